package bench

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// progress draws a one-line bar on a terminal with carriage returns. A nil
// *progress draws nothing.
type progress struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
	line bool // a bar is on the line
}

func newProgress(w io.Writer) *progress {
	if w == nil {
		return nil
	}
	return &progress{w: w}
}

// bar redraws "label [####    ] done/total suffix", at most ten times a
// second unless done == total.
func (p *progress) bar(label string, done, total float64, suffix string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < total && time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := 0.0
	if total > 0 {
		frac = min(max(done/total, 0), 1)
	}
	fill := int(frac * width)
	// Padding the suffix overwrites a longer previous one without escapes.
	fmt.Fprintf(p.w, "\r%-10s [%s%s] %-44s", label, strings.Repeat("#", fill), strings.Repeat(".", width-fill), suffix)
	p.line = true
}

// say ends any bar and prints a line.
func (p *progress) say(format string, args ...any) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line {
		fmt.Fprintln(p.w)
		p.line = false
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// done ends the bar's line.
func (p *progress) done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.line {
		fmt.Fprintln(p.w)
		p.line = false
	}
}
