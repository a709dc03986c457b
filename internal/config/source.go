package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/goccy/go-yaml"
)

// ParseSource reads one entry of the sources section, in JSON or YAML (a
// JSON object is YAML), for the named stream, and checks it as Validate
// checks the entries of the file; an error names the field ("url: …").
// A "stream" key, if present, must be the same name.
func ParseSource(stream string, data []byte) (Source, error) {
	var s Source
	if err := yaml.UnmarshalWithOptions(data, &s, yaml.Strict()); err != nil {
		msg := yamlMessage(err)
		// The decoder names Go's field (Source.OnDemand): name the key.
		t := reflect.TypeFor[Source]()
		for i := range t.NumField() {
			if goName := "Source." + t.Field(i).Name; strings.Contains(msg, goName) {
				key := t.Field(i).Tag.Get("yaml")
				return Source{}, errors.New(key + ": " + strings.ReplaceAll(msg, "Go struct field "+goName, key))
			}
		}
		return Source{}, errors.New(msg)
	}
	if s.Stream == "" {
		s.Stream = stream
	}
	if s.Stream != stream {
		return Source{}, fmt.Errorf("stream: %.40q is not the stream of the URL (%.40q)", s.Stream, stream)
	}
	var v validator
	v.sources([]Source{s})
	errs := make([]error, len(v.errs))
	for i, e := range v.errs {
		errs[i] = &fieldError{path: strings.TrimPrefix(e.path, "sources[0]."), msg: e.msg}
	}
	return s, errors.Join(errs...)
}
