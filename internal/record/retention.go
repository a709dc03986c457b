package record

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Bounds on how often the janitor looks at the recording directories.
const (
	minPruneInterval = 250 * time.Millisecond
	maxPruneInterval = time.Minute
)

// janitor applies each rule's max_age and max_bytes: every so often
// (a quarter of the shortest max_age, 250ms..1m) and whenever a file was
// closed.
func (m *Manager) janitor() {
	defer m.wg.Done()
	t := time.NewTicker(pruneInterval(m.currentRules()))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.prune:
		case <-m.ctx.Done():
			return
		}
		rules := m.currentRules()
		t.Reset(pruneInterval(rules)) // the rules may have been reloaded
		for _, r := range rules {
			if r.MaxAge > 0 || r.MaxBytes > 0 {
				m.pruneDir(r, time.Now())
			}
		}
	}
}

// pruneInterval is a quarter of the shortest max_age, within
// [minPruneInterval, maxPruneInterval].
func pruneInterval(rules []Rule) time.Duration {
	interval := maxPruneInterval
	for _, r := range rules {
		if r.MaxAge > 0 {
			interval = min(interval, max(r.MaxAge/4, minPruneInterval))
		}
	}
	return interval
}

// recFile is one recording found on disk.
type recFile struct {
	path string
	size int64
	mod  time.Time
}

// pruneDir deletes the files under r.Dir older than r.MaxAge, then the
// oldest while the directory holds more than r.MaxBytes. Files being
// written count towards the size but are never deleted. Only .mp4 files
// are touched; directories left empty (and not new) are removed.
func (m *Manager) pruneDir(r Rule, now time.Time) {
	var files []recFile
	var dirs []string
	var total int64
	m.mu.Lock()
	open := make(map[string]bool, len(m.open))
	for p := range m.open {
		open[p] = true
	}
	m.mu.Unlock()
	_ = filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skip, and say nothing per tick
		}
		if d.IsDir() {
			if p != r.Dir {
				dirs = append(dirs, p)
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasSuffix(p, ".mp4") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if open[p] {
			total += info.Size()
			return nil
		}
		files = append(files, recFile{path: p, size: info.Size(), mod: info.ModTime()})
		return nil
	})
	slices.SortFunc(files, func(a, b recFile) int { return a.mod.Compare(b.mod) })
	keep := files[:0]
	for _, f := range files {
		if r.MaxAge > 0 && now.Sub(f.mod) > r.MaxAge {
			m.remove(f, "max_age")
			continue
		}
		keep = append(keep, f)
		total += f.size
	}
	for i := 0; r.MaxBytes > 0 && total > int64(r.MaxBytes) && i < len(keep); i++ {
		m.remove(keep[i], "max_bytes")
		total -= keep[i].size
	}
	// Deepest first, so that a parent emptied by its children goes too.
	// A directory modified lately may be about to get a file.
	for _, d := range slices.Backward(dirs) {
		if info, err := os.Stat(d); err == nil && now.Sub(info.ModTime()) > max(r.MaxAge, time.Minute) {
			_ = os.Remove(d) // fails, as wanted, unless empty
		}
	}
}

func (m *Manager) remove(f recFile, why string) {
	err := os.Remove(f.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.log.Warn("recording not deleted", "file", f.path, "err", err)
		return
	}
	m.stats.removed.Add(1)
	m.log.Info("recording deleted", "file", f.path, "bytes", f.size, "limit", why)
}
