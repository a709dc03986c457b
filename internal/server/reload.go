package server

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/sources"
)

// reloaded are the sections Reload applies to the running server; any
// other section that changed needs a restart.
var reloaded = map[string]bool{"sources": true, "auth": true, "record": true}

// swapAuth is the authenticator the edges hold: Reload swaps the rules
// behind it, and a request in flight finishes with the rules it started
// with.
type swapAuth struct {
	cur atomic.Pointer[authHolder]
}

type authHolder struct {
	a      auth.Authenticator
	tokens []string // the static rules' tokens, which RTSP Digest answers are checked against
}

func newSwapAuth(a auth.Authenticator, c auth.Config) *swapAuth {
	s := &swapAuth{}
	s.swap(a, c)
	return s
}

// staticTokens lists the tokens of c's static rules.
func staticTokens(c auth.Config) []string {
	var out []string
	for _, r := range c.Rules {
		if r.Mode == auth.ModeStatic {
			for _, t := range r.Tokens {
				out = append(out, t.Token)
			}
		}
	}
	return out
}

// tokens are the static rules' tokens (rtsp.Deps.DigestTokens).
func (s *swapAuth) tokens() []string { return s.cur.Load().tokens }

// Authorize asks the current rules (auth.Authenticator).
func (s *swapAuth) Authorize(ctx context.Context, r auth.Request) error {
	return s.cur.Load().a.Authorize(ctx, r)
}

func (s *swapAuth) swap(a auth.Authenticator, c auth.Config) {
	s.cur.Store(&authHolder{a: a, tokens: staticTokens(c)})
}

// Reload applies a new configuration (config.Load of the same file,
// environment and flags as at start) to the running server: the sources
// (new ones start, removed ones stop, changed ones restart, the others
// are not touched) and the auth rules. Other sections that changed need
// a restart: they are named in one log line and kept as they were. A
// cfg that does not validate is refused and nothing changes. Sources
// set through the API are replaced by the file's.
func (s *Server) Reload(cfg config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := cfg.Validate(); err != nil {
		s.log.Error("config reload refused; the running config stays", "err", oneLine(err))
		return err
	}
	authz, err := auth.New(cfg.Auth, nil)
	if err != nil {
		s.log.Error("config reload refused; the running config stays", "err", oneLine(err))
		return err
	}
	restart := changedSettings(s.cfg, cfg)
	if !reflect.DeepEqual(s.cfg.Auth, cfg.Auth) {
		s.authz.swap(authz, cfg.Auth)
	}
	diff := s.sources.Apply(sourceList(cfg.Sources))
	if !reflect.DeepEqual(s.cfg.Record, cfg.Record) {
		s.rec.SetRules(cfg.Record.Rules)
	}
	s.cfg.Sources, s.cfg.Auth, s.cfg.Record = cfg.Sources, cfg.Auth, cfg.Record
	s.log.Info("config reloaded", "applied", "sources, auth, record",
		"started", diff.Started, "stopped", diff.Stopped, "restarted", diff.Restarted)
	if len(restart) > 0 {
		s.log.Warn("config reload: these settings changed and need a restart; they are kept as they were",
			"settings", strings.Join(restart, ", "))
	}
	return nil
}

// changedSettings names the settings (by yaml path: "hls.segment_count",
// "record.rules") that differ between old and cur and that Reload does
// not apply.
func changedSettings(old, cur config.Config) []string {
	var out []string
	var walk func(prefix string, a, b reflect.Value)
	walk = func(prefix string, a, b reflect.Value) {
		t := a.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "" || (prefix == "" && reloaded[name]) {
				continue
			}
			path := name
			if prefix != "" {
				path = prefix + "." + name
			}
			fa, fb := a.Field(i), b.Field(i)
			if fa.Kind() == reflect.Struct && fa.Type() != reflect.TypeFor[time.Duration]() {
				walk(path, fa, fb)
				continue
			}
			if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
				out = append(out, path)
			}
		}
	}
	walk("", reflect.ValueOf(old), reflect.ValueOf(cur))
	return out
}

// sourceEditor changes the sources at run time (httpapi.SourceEditor).
type sourceEditor struct{ sup *sources.Supervisor }

// PutSource adds or replaces a source, checked as the config file's
// entries are.
func (e sourceEditor) PutSource(stream string, body []byte) (bool, error) {
	src, err := config.ParseSource(stream, body)
	if err != nil {
		return false, fmt.Errorf("%w: %w", sources.ErrInvalid, err)
	}
	return e.sup.Put(sourceList([]config.Source{src})[0]), nil
}

// RemoveSource stops a source.
func (e sourceEditor) RemoveSource(stream string) bool { return e.sup.Remove(stream) }

// sourceList is the configured sources as the supervisor takes them.
func sourceList(cfg []config.Source) []sources.Source {
	list := make([]sources.Source, len(cfg))
	for i, s := range cfg {
		list[i] = sources.Source{Stream: s.Stream, URL: s.URL, OnDemand: s.OnDemand, Transport: s.Transport,
			CloseAfter: s.OnDemandCloseAfter}
	}
	return list
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
