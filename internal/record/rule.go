package record

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Rule says which streams are recorded, where, and for how long files are
// kept. The first rule whose pattern matches a stream applies to it.
type Rule struct {
	// Streams is a path.Match pattern of stream names ("" or "*": all).
	Streams string `yaml:"streams"`
	// Dir is the directory the files go under.
	Dir string `yaml:"dir"`
	// Name is the file name pattern under Dir, without extension (".mp4"
	// is added): %stream, and %Y %m %d %H %M %S (local time of the
	// segment's first frame), %f (microseconds), %s (Unix seconds), %%.
	// "" means DefaultName.
	Name string `yaml:"name"`
	// Segment is how long one file runs before the next starts, at the
	// next keyframe (0: DefaultSegment).
	Segment time.Duration `yaml:"segment"`
	// MaxAge deletes files older than this (0: keep).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes deletes the oldest files while Dir holds more than this
	// (0: no bound). Written as a number of bytes or with a unit: 10GiB,
	// 500MB.
	MaxBytes Bytes `yaml:"max_bytes"`
	// Audio is aac (Opus transcoded to AAC-LC, the default: plays
	// everywhere), opus (as published) or none.
	Audio string `yaml:"audio"`
	// Manual leaves matching streams unrecorded until recording is
	// switched on through the API.
	Manual bool `yaml:"manual"`
}

// Defaults of a Rule's optional fields.
const (
	DefaultName    = "%stream/%Y-%m-%d_%H-%M-%S"
	DefaultSegment = 10 * time.Minute
)

// Audio modes of a Rule.
const (
	AudioAAC  = "aac"
	AudioOpus = "opus"
	AudioNone = "none"
)

// withDefaults returns r with its empty fields filled in.
func (r Rule) withDefaults() Rule {
	if r.Streams == "" {
		r.Streams = "*"
	}
	if r.Name == "" {
		r.Name = DefaultName
	}
	if r.Segment <= 0 {
		r.Segment = DefaultSegment
	}
	if r.Audio == "" {
		r.Audio = AudioAAC
	}
	return r
}

// matches reports whether the rule applies to a stream.
func (r Rule) matches(stream string) bool {
	if r.Streams == "" || r.Streams == "*" {
		return true
	}
	ok, err := path.Match(r.Streams, stream)
	return err == nil && ok
}

// CheckPattern reports whether p is a valid Streams pattern.
func CheckPattern(p string) error {
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern (allowed: path.Match syntax such as cam-* or *)", p)
	}
	return nil
}

// CheckName reports whether a Name pattern is valid: known % verbs only,
// relative, and no ".." element, so that no stream can write outside Dir.
func CheckName(name string) error {
	if name == "" {
		return nil
	}
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("%q is absolute (allowed: a path relative to dir)", name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." || el == "." || el == "" {
			return fmt.Errorf("%q has an empty, . or .. element (allowed: names with %%stream and time verbs, e.g. %s)", name, DefaultName)
		}
	}
	if _, err := expand(name, "x", time.Time{}); err != nil {
		return fmt.Errorf("%q: %v (allowed verbs: %%stream %%Y %%m %%d %%H %%M %%S %%f %%s %%%%)", name, err)
	}
	return nil
}

// expand fills in a Name pattern.
func expand(pattern, stream string, t time.Time) (string, error) {
	var b strings.Builder
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if strings.HasPrefix(pattern[i:], "%stream") {
			b.WriteString(stream)
			i += len("%stream") - 1
			continue
		}
		if i+1 >= len(pattern) {
			return "", errors.New("ends with %")
		}
		i++
		switch pattern[i] {
		case 'Y':
			fmt.Fprintf(&b, "%04d", t.Year())
		case 'm':
			fmt.Fprintf(&b, "%02d", int(t.Month()))
		case 'd':
			fmt.Fprintf(&b, "%02d", t.Day())
		case 'H':
			fmt.Fprintf(&b, "%02d", t.Hour())
		case 'M':
			fmt.Fprintf(&b, "%02d", t.Minute())
		case 'S':
			fmt.Fprintf(&b, "%02d", t.Second())
		case 'f':
			fmt.Fprintf(&b, "%06d", t.Nanosecond()/1000)
		case 's':
			b.WriteString(strconv.FormatInt(t.Unix(), 10))
		case '%':
			b.WriteByte('%')
		default:
			return "", fmt.Errorf("unknown verb %%%c", pattern[i])
		}
	}
	return b.String(), nil
}

// Bytes is a size in bytes that YAML, flags and environment variables
// may write with a unit: 10GiB, 500MB, 1048576.
type Bytes int64

var byteUnits = []struct {
	suffix string
	n      int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1},
}

// ParseBytes reads a size: an integer, optionally followed by a unit
// (B, KB, MB, GB, TB in powers of 1000; K/KiB, M/MiB, G/GiB, T/TiB in
// powers of 1024).
func ParseBytes(s string) (Bytes, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 10GiB, 500MB, 1048576)", s)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return Bytes(n * mult), nil
}

// String writes the size with the largest binary unit that divides it.
func (b Bytes) String() string {
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10)
}

// UnmarshalYAML implements the YAML library's BytesUnmarshaler.
func (b *Bytes) UnmarshalYAML(data []byte) error {
	s := strings.Trim(strings.TrimSpace(string(data)), `"'`)
	v, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML implements the YAML library's BytesMarshaler.
func (b Bytes) MarshalYAML() ([]byte, error) { return []byte(b.String()), nil }
