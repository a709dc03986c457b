package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// envPrefix starts every environment variable that sluice reads.
const envPrefix = "SLUICE_"

// field is one leaf setting of Config, named by its yaml path.
type field struct {
	path  string // yaml path, e.g. "webrtc.udp_port"
	index []int  // reflect field index from Config
	typ   reflect.Type
}

// fields lists every leaf of Config in declaration order; fieldByPath and
// fieldByEnv index it. sections maps a section's yaml path ("" for the top
// level) to the keys allowed in it, in declaration order.
var (
	fields      = walk(reflect.TypeFor[Config](), "", nil)
	fieldByPath = index(fields, func(f field) string { return f.path })
	fieldByEnv  = index(fields, field.env)
	sections    = sectionKeys(fields)
)

var durationType = reflect.TypeFor[time.Duration]()

// walk collects the leaves of struct type t. A struct-typed field is a
// section and is descended into; anything else is a leaf.
func walk(t reflect.Type, prefix string, idx []int) []field {
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name) // the yaml library's default
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fi := append(append([]int(nil), idx...), i)
		if sf.Type.Kind() == reflect.Struct {
			out = append(out, walk(sf.Type, path, fi)...)
			continue
		}
		out = append(out, field{path: path, index: fi, typ: sf.Type})
	}
	return out
}

func index(fs []field, key func(field) string) map[string]field {
	m := make(map[string]field, len(fs))
	for _, f := range fs {
		if _, dup := m[key(f)]; dup {
			panic("config: two settings are both named " + key(f))
		}
		m[key(f)] = f
	}
	return m
}

func sectionKeys(fs []field) map[string][]string {
	m := map[string][]string{}
	for _, f := range fs {
		parts := strings.Split(f.path, ".")
		for i := range parts {
			sec := strings.Join(parts[:i], ".")
			if keys := m[sec]; len(keys) == 0 || keys[len(keys)-1] != parts[i] {
				m[sec] = append(keys, parts[i])
			}
		}
	}
	return m
}

// env is the environment variable that sets f.
func (f field) env() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(f.path, ".", "_"))
}

// kind names the text form of f's values in the usage text.
func (f field) kind() string {
	switch {
	case f.typ == durationType:
		return "duration"
	case f.isStringList():
		return "list"
	}
	switch f.typ.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	}
	return "yaml"
}

func (f field) isStringList() bool {
	return f.typ.Kind() == reflect.Slice && f.typ.Elem().Kind() == reflect.String
}

// in returns f's value inside c, settable when c is addressable.
func (f field) in(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(f.index)
}

// set stores v into c. Empty lists are stored as nil, as in Default.
func (f field) set(c *Config, v reflect.Value) {
	dst := f.in(c)
	if v.Kind() == reflect.Slice && v.Len() == 0 {
		dst.SetZero()
		return
	}
	dst.Set(v)
}

// parseText reads the text form used by flags and environment variables:
// Go durations ("10s"), comma-separated lists, and YAML flow syntax for
// anything else (lists of structs such as webrtc.ice_servers).
func (f field) parseText(s string) (reflect.Value, error) {
	v := reflect.New(f.typ).Elem()
	trimmed := strings.TrimSpace(s)
	switch f.kind() {
	case "string":
		v.SetString(s)
	case "bool":
		b, err := strconv.ParseBool(trimmed)
		if err != nil {
			return v, fmt.Errorf("%q is not a boolean (allowed: true, false)", s)
		}
		v.SetBool(b)
	case "duration":
		d, err := time.ParseDuration(trimmed)
		if err != nil {
			return v, fmt.Errorf("%q is not a duration (e.g. 500ms, 10s, 1m)", s)
		}
		v.SetInt(int64(d))
	case "int":
		n, err := strconv.ParseInt(trimmed, 10, f.typ.Bits())
		if errors.Is(err, strconv.ErrRange) {
			return v, fmt.Errorf("%q is too large", s)
		}
		if err != nil {
			return v, fmt.Errorf("%q is not an integer", s)
		}
		v.SetInt(n)
	case "list":
		var items []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(f.typ))
	default:
		if err := yaml.UnmarshalWithOptions([]byte(s), v.Addr().Interface(), yaml.Strict()); err != nil {
			return v, fmt.Errorf("%q is not valid here: %s (want YAML flow syntax, e.g. %s)", s, yamlMessage(err), flowExample(f))
		}
	}
	return v, nil
}

// parseYAML reads a value decoded from the config file into a generic form
// (string, uint64, float64, bool, []any, map[string]any). Scalars take the
// same text form as flags, so "udp_port: 8189" and "-webrtc.udp_port 8189"
// accept the same things; lists of scalars fill string lists directly.
func (f field) parseYAML(raw any) (reflect.Value, error) {
	switch f.kind() {
	case "yaml":
		text, err := yaml.Marshal(raw)
		if err != nil {
			return reflect.Value{}, err
		}
		v := reflect.New(f.typ).Elem()
		if err := yaml.UnmarshalWithOptions(text, v.Addr().Interface(), yaml.Strict()); err != nil {
			return v, errors.New(yamlMessage(err))
		}
		return v, nil
	case "list":
		list, ok := raw.([]any)
		if !ok {
			break
		}
		items := make([]string, 0, len(list))
		for i, item := range list {
			switch item.(type) {
			case []any, map[string]any:
				return reflect.Value{}, fmt.Errorf("item %d is not a single value", i)
			}
			items = append(items, fmt.Sprint(item))
		}
		return reflect.ValueOf(items).Convert(f.typ), nil
	}
	switch raw.(type) {
	case []any, map[string]any:
		return reflect.Value{}, fmt.Errorf("want a single %s value, not a YAML list or mapping", f.kind())
	}
	return f.parseText(fmt.Sprint(raw))
}

// text formats v in the form parseText reads, for the usage text.
func (f field) text(v reflect.Value) string {
	switch f.kind() {
	case "string":
		return strconv.Quote(v.String())
	case "duration":
		return shortDuration(time.Duration(v.Int()))
	case "list":
		return strconv.Quote(strings.Join(v.Interface().([]string), ","))
	case "yaml":
		if v.Len() == 0 {
			return "[]"
		}
		b, err := yaml.MarshalWithOptions(v.Interface(), yaml.Flow(true))
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(b))
	}
	return fmt.Sprint(v.Interface())
}

// shortDuration prints d without zero units: 5m rather than 5m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// yamlMessage is the YAML library's message without its position and
// source excerpt, which refer to text the user did not write as such.
func yamlMessage(err error) string {
	var yerr yaml.Error
	if errors.As(err, &yerr) {
		return yerr.GetMessage()
	}
	return err.Error()
}

func flowExample(f field) string {
	switch f.path {
	case "webrtc.ice_servers", "http.ice_servers":
		return `[{urls: ["stun:stun.l.google.com:19302"]}]`
	case "events.webhooks":
		return `[{url: "http://127.0.0.1:9000/hook", secret: k}]`
	case "forward":
		return `[{streams: "live-*", to: ["rtmp://a.rtmp.youtube.com/live2/KEY"]}]`
	case "sources":
		return `[{stream: cam1, url: "rtsp://user:pass@192.0.2.10:554/stream"}]`
	case "record.rules":
		return `[{streams: "cam-*", dir: /var/lib/sluice/rec, max_age: 168h}]`
	case "auth.rules":
		return `[{actions: [publish], mode: static, tokens: [{token: secret}]}]`
	}
	return "[{key: value}]"
}
