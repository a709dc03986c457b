package record

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoRecording means no recording file covers what was asked for.
var ErrNoRecording = errors.New("no recording")

// joinTolerance is how far apart the end of one file and the start of the
// next may be for both to count as one run: file names have one-second
// precision, and the recorder starts the next file at the keyframe that
// ends the previous one.
const joinTolerance = 1500 * time.Millisecond

// maxFiles bounds how many files one listing looks at.
const maxFiles = 100_000

// Segment is a run of contiguous recording files of one stream, as the
// API lists it.
type Segment struct {
	Start    time.Time `json:"start"`
	Duration float64   `json:"duration_s"`
	Bytes    int64     `json:"bytes"`
}

// Recording is a stream's recorded runs, oldest first.
type Recording struct {
	Stream   string    `json:"stream"`
	Segments []Segment `json:"segments"`
}

// file is one recording file found on disk, with what its name and its
// fragments say.
type file struct {
	path   string
	stream string
	start  time.Time
	dur    time.Duration
	size   int64
}

// catalog finds the recording files under the rules' directories. It
// reads names and fragment headers only, and keeps each file's duration
// while its size and time stay the same.
type catalog struct {
	rules []Rule
	names []*regexp.Regexp // per rule

	mu    sync.Mutex
	cache map[string]cachedDur
}

type cachedDur struct {
	size int64
	mod  time.Time
	dur  time.Duration
}

func newCatalog(rules []Rule) *catalog {
	c := &catalog{rules: rules, cache: map[string]cachedDur{}}
	for _, r := range rules {
		c.names = append(c.names, nameRegexp(r.Name))
	}
	return c
}

// nameRegexp turns a Name pattern into a regular expression over the
// slash-separated path under Dir (".mp4" and the "_N" of a second file in
// the same second included), with named groups per verb.
func nameRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	seen := map[string]bool{}
	group := func(name, re string) {
		if seen[name] {
			b.WriteString(re) // Go's regexp has no back-references
			return
		}
		seen[name] = true
		b.WriteString("(?P<" + name + ">" + re + ")")
	}
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' {
			b.WriteString(regexp.QuoteMeta(string(c)))
			continue
		}
		if strings.HasPrefix(pattern[i:], "%stream") {
			group("stream", `[A-Za-z0-9_~.-]+`)
			i += len("%stream") - 1
			continue
		}
		if i+1 >= len(pattern) {
			break
		}
		i++
		switch pattern[i] {
		case 'Y':
			group("Y", `\d{4}`)
		case 'm', 'd', 'H', 'M', 'S':
			group(string(pattern[i]), `\d{2}`)
		case 'f':
			group("f", `\d{6}`)
		case 's':
			group("s", `\d+`)
		case '%':
			b.WriteString("%")
		}
	}
	b.WriteString(`(?:_\d+)?\.mp4$`)
	return regexp.MustCompile(b.String())
}

// parseName reads the stream and start time out of a file's path under
// the directory of rule i; ok is false for files the rule did not name.
func (c *catalog) parseName(i int, rel string) (stream string, start time.Time, ok bool) {
	re := c.names[i]
	m := re.FindStringSubmatch(filepath.ToSlash(rel))
	if m == nil {
		return "", time.Time{}, false
	}
	v := map[string]int{}
	for j, name := range re.SubexpNames() {
		if name == "" || j >= len(m) {
			continue
		}
		if name == "stream" {
			stream = m[j]
			continue
		}
		n, err := strconv.Atoi(m[j])
		if err != nil {
			return "", time.Time{}, false
		}
		v[name] = n
	}
	if stream == "" {
		// A rule for one stream may leave %stream out of the name.
		if strings.ContainsAny(c.rules[i].Streams, `*?[\`) {
			return "", time.Time{}, false
		}
		stream = c.rules[i].Streams
	}
	if s, has := v["s"]; has {
		start = time.Unix(int64(s), int64(v["f"])*1000)
	} else if _, has := v["Y"]; has {
		start = time.Date(v["Y"], time.Month(v["m"]), v["d"], v["H"], v["M"], v["S"], v["f"]*1000, time.Local)
	} else {
		return "", time.Time{}, false // no time in the name
	}
	if !c.rules[i].matches(stream) {
		return "", time.Time{}, false
	}
	return stream, start, true
}

// files returns the recording files of one stream ("" for all), oldest
// first. A file whose fragments cannot be read is left out.
func (c *catalog) files(stream string) []file {
	var out []file
	seen := map[string]bool{}
	for i, r := range c.rules {
		_ = filepath.WalkDir(r.Dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || len(seen) >= maxFiles {
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() || !strings.HasSuffix(p, ".mp4") || seen[p] {
				return nil
			}
			rel, err := filepath.Rel(r.Dir, p)
			if err != nil {
				return nil
			}
			name, start, ok := c.parseName(i, rel)
			if !ok || (stream != "" && name != stream) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			seen[p] = true
			dur, ok := c.duration(p, info)
			if !ok || dur <= 0 {
				return nil
			}
			// The name says the second the file started; the last write
			// (its time) less its length says it more precisely.
			if exact := info.ModTime().Add(-dur); !exact.Before(start) && exact.Before(start.Add(time.Second)) {
				start = exact
			}
			out = append(out, file{path: p, stream: name, start: start, dur: dur, size: info.Size()})
			return nil
		})
	}
	slices.SortFunc(out, func(a, b file) int {
		if a.stream != b.stream {
			return strings.Compare(a.stream, b.stream)
		}
		return a.start.Compare(b.start)
	})
	c.mu.Lock()
	for p := range c.cache {
		if !seen[p] {
			delete(c.cache, p)
		}
	}
	c.mu.Unlock()
	return out
}

// duration returns how long a file runs, from its fragments' headers.
func (c *catalog) duration(path string, info fs.FileInfo) (time.Duration, bool) {
	c.mu.Lock()
	d, ok := c.cache[path]
	c.mu.Unlock()
	if ok && d.size == info.Size() && d.mod.Equal(info.ModTime()) {
		return d.dur, true
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	rf, err := readFile(f)
	if err != nil {
		return 0, false
	}
	c.mu.Lock()
	c.cache[path] = cachedDur{size: info.Size(), mod: info.ModTime(), dur: rf.dur}
	c.mu.Unlock()
	return rf.dur, true
}

// runs groups a stream's files (oldest first) into runs of files that
// follow each other.
func runs(files []file) [][]file {
	var out [][]file
	for i, f := range files {
		if i > 0 {
			prev := files[i-1]
			end := prev.start.Add(prev.dur)
			if prev.stream == f.stream && f.start.Sub(end).Abs() <= joinTolerance {
				out[len(out)-1] = append(out[len(out)-1], f)
				continue
			}
		}
		out = append(out, []file{f})
	}
	return out
}

// Recordings lists the recorded runs of one stream, or of every stream
// when stream is "" (one Recording per stream, by name). Files written by
// earlier runs of sluice count: the listing is read from the disk.
func (m *Manager) Recordings(stream string) []Recording {
	var out []Recording
	for _, run := range runs(m.catalogNow().files(stream)) {
		if len(out) == 0 || out[len(out)-1].Stream != run[0].stream {
			out = append(out, Recording{Stream: run[0].stream, Segments: []Segment{}})
		}
		seg := Segment{Start: run[0].start.UTC()}
		var d time.Duration
		for _, f := range run {
			d += f.dur
			seg.Bytes += f.size
		}
		seg.Duration = d.Seconds()
		rec := &out[len(out)-1]
		rec.Segments = append(rec.Segments, seg)
	}
	return out
}
