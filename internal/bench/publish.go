package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// feeder sends the media loop at real-time pace: an access unit every
// 1/fps, stamped and padded, and an Opus packet every 20 ms. The schedule
// is kept against the start time so that slow writes do not add up.
type feeder struct {
	pub *client.Publisher
	m   *media
	log *sendLog

	videoBytes atomic.Uint64 // NAL unit bytes sent
	aus        atomic.Uint64 // access units sent
	keyframes  atomic.Uint64 // access units sent that hold an IDR

	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newFeeder(pub *client.Publisher, m *media, log *sendLog) *feeder {
	return &feeder{pub: pub, m: m, log: log, done: make(chan struct{})}
}

func (f *feeder) run(ctx context.Context) {
	defer close(f.done)
	frame := time.Second / time.Duration(f.m.fps)
	timer := time.NewTimer(0)
	defer timer.Stop()
	start := time.Now()
	var nv, na int
	for {
		tv := time.Duration(nv) * frame
		ta := time.Duration(na) * client.OpusFrameDuration
		next := min(tv, ta)
		timer.Reset(time.Until(start.Add(next)))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if ta <= tv {
			if err := f.pub.WriteOpus(opusPacket(uint16(na), f.m.opusSize), ta); err != nil {
				f.fail(err)
				return
			}
			na++
			continue
		}
		src := f.m.aus[nv%len(f.m.aus)]
		au := stampAU(src, uint64(nv), f.m.padTo)
		f.log.put(uint64(nv), f.log.now())
		if err := f.pub.WriteH264(au, tv); err != nil {
			f.fail(err)
			return
		}
		size := 0
		for _, n := range au {
			size += len(n)
		}
		f.videoBytes.Add(uint64(size))
		f.aus.Add(1)
		if client.IsIDR(src) {
			f.keyframes.Add(1)
		}
		nv++
	}
}

func (f *feeder) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// result returns the write error that stopped the feeder, if any.
func (f *feeder) result() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
