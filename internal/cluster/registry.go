package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sluice-media/sluice/internal/rtc"
)

// Errors of the cluster; the HTTP edge maps them to status codes.
var (
	// ErrOwned means another node owns the stream: its publisher is there.
	ErrOwned = errors.New("stream is published on another node")
	// ErrFull means no node of the cluster has room for another viewer.
	ErrFull = errors.New("no node of the cluster has room for another viewer")
	// ErrUnavailable means Redis could not be reached or answered an error.
	ErrUnavailable = errors.New("cluster registry unavailable")
)

// keyPrefix starts every key sluice writes to Redis.
const keyPrefix = "sluice:"

func streamKey(name string) string { return keyPrefix + "stream:" + name }
func nodeKey(id string) string     { return keyPrefix + "node:" + id }

const nodesKey = keyPrefix + "nodes" // set of node ids that advertised

// Owner is who owns a stream: the node whose publisher feeds it. Lease is
// random per claim, so that a node that loses and regains a stream is told
// apart from itself, and only the claimer renews or releases it.
type Owner struct {
	Node  string `json:"node"`
	URL   string `json:"url"`
	Lease string `json:"lease"`
}

// Node is what a node advertises: where it is and how loaded.
type Node struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Viewers  int    `json:"viewers"`
	Capacity int    `json:"capacity"` // 0: no limit
}

// hasRoom reports whether the node takes another viewer.
func (n Node) hasRoom() bool { return n.Capacity == 0 || n.Viewers < n.Capacity }

// Registry is the cluster's shared state in Redis: stream owners, each a
// key with a TTL lease, and node adverts, likewise leased.
type Registry struct {
	rdb *redis.Client
	ttl time.Duration

	renewFails atomic.Uint64 // lease renewals Redis did not answer
	leasesLost atomic.Uint64 // leases found replaced at renewal
}

// NewRegistry uses the Redis at addr (host:port or a redis:// URL); leases
// last ttl unless renewed.
func NewRegistry(addr string, ttl time.Duration) (*Registry, error) {
	opts := &redis.Options{Addr: addr}
	if strings.Contains(addr, "://") {
		var err error
		if opts, err = redis.ParseURL(addr); err != nil {
			return nil, fmt.Errorf("cluster.redis: %w", err)
		}
	}
	// Fail fast: a request that waits for Redis waits for nothing else.
	opts.DialTimeout = min(2*time.Second, ttl)
	opts.ReadTimeout = min(time.Second, ttl/2)
	opts.WriteTimeout = opts.ReadTimeout
	opts.MaxRetries = 1
	opts.PoolSize = 16
	return &Registry{rdb: redis.NewClient(opts), ttl: ttl}, nil
}

// Close closes the connections to Redis.
func (r *Registry) Close() error { return r.rdb.Close() }

// Ping checks that Redis answers.
func (r *Registry) Ping(ctx context.Context) error {
	if err := r.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// renewScript extends a lease if it is still the caller's, and writes it
// again if nobody holds the key (it expired while Redis was unreachable, or
// Redis restarted empty): only another node's lease makes it lost.
var renewScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if v == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
if not v then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`)

// replaceScript swaps one lease for another, if the first is still there.
var replaceScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[2], "PX", ARGV[3])
  return 1
end
return 0`)

// releaseScript deletes a lease only if it is still the caller's.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// Claim makes node the owner of stream if nobody owns it: one atomic SET NX
// with the lease's TTL, so of two nodes claiming at once exactly one wins.
// The loser gets ErrOwned naming the owner. The lease is renewed until
// Release, or until Redis shows another node's lease in its place (Lost).
func (r *Registry) Claim(ctx context.Context, stream, node, url string) (*Lease, error) {
	o := Owner{Node: node, URL: url, Lease: rtc.NewID()}
	val, _ := json.Marshal(o)
	ok, err := r.rdb.SetNX(ctx, streamKey(stream), val, r.ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: claim %q: %v", ErrUnavailable, stream, err)
	}
	if !ok {
		raw, owner, found, err := r.owner(ctx, stream)
		switch {
		case err != nil:
			return nil, err
		case !found: // expired in between: the caller may try again
			return nil, fmt.Errorf("%w: %q (its owner just left; try again)", ErrOwned, stream)
		case owner.Node != node:
			return nil, &OwnedError{Owner: owner, Stream: stream}
		}
		// A lease of this node's id that this process does not hold was
		// left by a previous run of the node (a restart): take it over
		// rather than make the publisher wait for it to expire. Node ids
		// must be unique among running nodes.
		n, err := replaceScript.Run(ctx, r.rdb, []string{streamKey(stream)}, raw, val, r.ttl.Milliseconds()).Int()
		if err != nil {
			return nil, fmt.Errorf("%w: claim %q: %v", ErrUnavailable, stream, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %q (its lease changed hands; try again)", ErrOwned, stream)
		}
	}
	l := &Lease{r: r, key: streamKey(stream), val: string(val), owner: o, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l, nil
}

// OwnedError is ErrOwned with the owner's name.
type OwnedError struct {
	Stream string
	Owner  Owner
}

func (e *OwnedError) Error() string {
	return fmt.Sprintf("%v: %q is published on node %s", ErrOwned, e.Stream, e.Owner.Node)
}

// Unwrap makes errors.Is(err, ErrOwned) hold.
func (e *OwnedError) Unwrap() error { return ErrOwned }

// Owner returns the owner of stream; found is false if nobody owns it.
func (r *Registry) Owner(ctx context.Context, stream string) (o Owner, found bool, err error) {
	_, o, found, err = r.owner(ctx, stream)
	return o, found, err
}

// owner is Owner with the lease as stored.
func (r *Registry) owner(ctx context.Context, stream string) (raw string, o Owner, found bool, err error) {
	raw, err = r.rdb.Get(ctx, streamKey(stream)).Result()
	if errors.Is(err, redis.Nil) {
		return "", Owner{}, false, nil
	}
	if err != nil {
		return "", Owner{}, false, fmt.Errorf("%w: owner of %q: %v", ErrUnavailable, stream, err)
	}
	if err := json.Unmarshal([]byte(raw), &o); err != nil {
		return "", Owner{}, false, fmt.Errorf("%w: owner of %q: %v", ErrUnavailable, stream, err)
	}
	return raw, o, true, nil
}

// Advertise writes the node's advert with the lease TTL.
func (r *Registry) Advertise(ctx context.Context, n Node) error {
	val, _ := json.Marshal(n)
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, nodeKey(n.ID), val, r.ttl)
		p.SAdd(ctx, nodesKey, n.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: advertise: %v", ErrUnavailable, err)
	}
	return nil
}

// Withdraw removes the node's advert (on a clean shutdown).
func (r *Registry) Withdraw(ctx context.Context, id string) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, nodeKey(id))
		p.SRem(ctx, nodesKey, id)
		return nil
	})
	return err
}

// Nodes returns the live nodes' adverts, least loaded first. Ids whose
// advert expired are dropped from the set on the way.
func (r *Registry) Nodes(ctx context.Context) ([]Node, error) {
	ids, err := r.rdb.SMembers(ctx, nodesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: nodes: %v", ErrUnavailable, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = nodeKey(id)
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("%w: nodes: %v", ErrUnavailable, err)
	}
	var out []Node
	var gone []any
	for i, v := range vals {
		s, ok := v.(string)
		var n Node
		if !ok || json.Unmarshal([]byte(s), &n) != nil {
			gone = append(gone, ids[i])
			continue
		}
		out = append(out, n)
	}
	if len(gone) > 0 {
		_ = r.rdb.SRem(ctx, nodesKey, gone...).Err()
	}
	sort.Slice(out, func(i, j int) bool { return load(out[i]) < load(out[j]) })
	return out, nil
}

// load orders nodes for redirects: the share of capacity in use.
func load(n Node) float64 {
	if n.Capacity == 0 {
		return 0
	}
	return float64(n.Viewers) / float64(n.Capacity)
}

// Lease is a claimed stream ownership, renewed every third of the TTL.
type Lease struct {
	r     *Registry
	key   string
	val   string
	owner Owner

	lost     chan struct{} // closed when Redis says the lease is gone or not ours
	lostOnce sync.Once
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// Owner is what the lease wrote to Redis.
func (l *Lease) Owner() Owner { return l.owner }

// Lost is closed when another node's lease was found in place of this
// one: ownership is gone and the publisher should stop.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release stops renewing and deletes the lease if it is still ours, so
// that another node can claim the stream at once.
func (l *Lease) Release(ctx context.Context) {
	l.abandon()
	_ = releaseScript.Run(ctx, l.r.rdb, []string{l.key}, l.val).Err()
}

// abandon stops renewing without deleting: the lease expires after its
// TTL, as when its node dies.
func (l *Lease) abandon() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// renew extends the lease until Release. A renewal that Redis does not
// answer is tried again at the next tick: the lease lasts three ticks.
func (l *Lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.r.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.r.ttl/3)
		n, err := renewScript.Run(ctx, l.r.rdb, []string{l.key}, l.val, l.r.ttl.Milliseconds()).Int()
		cancel()
		if err != nil {
			l.r.renewFails.Add(1)
			continue
		}
		if n == 0 {
			l.r.leasesLost.Add(1)
			l.lostOnce.Do(func() { close(l.lost) })
			return
		}
	}
}
