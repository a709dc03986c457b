package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// envConfig names the YAML file when -config is not given, for containers
// that are configured through the environment only.
const envConfig = envPrefix + "CONFIG"

// envTestPrefix is reserved for the test suite's own switches
// (SLUICE_TEST_REQUIRE_FFPROBE, ...): they are not settings and are ignored.
const envTestPrefix = envPrefix + "TEST_"

// Load builds the Config for one run of the server. Sources are applied in
// this order, later ones winning per setting: Default, the YAML file named by
// -config (or SLUICE_CONFIG), SLUICE_* environment variables, flags. args
// are the command-line arguments without the program name; environ is in
// the form of os.Environ.
//
// Unknown YAML keys, unknown SLUICE_* variables and unknown flags are
// errors, so that a typo never silently leaves a default in place. The result
// is validated; every error names the setting and where its value came from.
// For -h (or -help) Load prints the usage to stdout and returns
// flag.ErrHelp.
func Load(args []string, environ []string) (Config, error) {
	return load(args, environ, os.Stdout)
}

// loader applies the sources to one Config and remembers, per setting path,
// which source set it last, to name that source in validation errors.
type loader struct {
	cfg    Config
	origin map[string]string
	errs   []error
}

func load(args, environ []string, usageOut io.Writer) (Config, error) {
	fv, configPath, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(usageOut)
		return Config{}, err
	}
	if err != nil {
		return Config{}, err
	}
	env := envSettings(environ)
	if configPath == "" {
		configPath = env[envConfig]
	}

	l := &loader{cfg: Default(), origin: map[string]string{}}
	if configPath != "" {
		l.file(configPath)
	}
	l.env(env)
	for _, s := range fv.set {
		v, err := s.f.parseText(s.text)
		l.store(s.f, "flag -"+s.f.path, v, err)
	}
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}

	for _, p := range l.cfg.problems() {
		path, _, _ := strings.Cut(p.path, "[")
		if o := l.origin[path]; o != "" {
			l.errs = append(l.errs, fmt.Errorf("%s: %w", o, p))
		} else {
			l.errs = append(l.errs, p)
		}
	}
	if len(l.errs) > 0 {
		return Config{}, errors.Join(l.errs...)
	}
	return l.cfg, nil
}

// store records the outcome of parsing one value for f from origin.
func (l *loader) store(f field, origin string, v reflect.Value, err error) {
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("%s: %s: %w", origin, f.path, err))
		return
	}
	f.set(&l.cfg, v)
	l.origin[f.path] = origin
}

// file applies the YAML file at path.
func (l *loader) file(path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		l.errs = append(l.errs, fmt.Errorf("config file: %w", err))
		return
	}
	l.yamlFile(path, data)
}

// yamlFile applies YAML text read from the file called name.
func (l *loader) yamlFile(name string, data []byte) {
	fail := func(line int, format string, args ...any) {
		where := name
		if line > 0 {
			where += ":" + strconv.Itoa(line)
		}
		l.errs = append(l.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	file, err := parser.ParseBytes(data, 0)
	if err != nil {
		fail(yamlLine(err), "%s", yamlMessage(err))
		return
	}
	if len(file.Docs) > 1 {
		fail(0, "holds %d YAML documents; want one", len(file.Docs))
		return
	}
	var root any
	if err := yaml.Unmarshal(data, &root); err != nil {
		fail(yamlLine(err), "%s", yamlMessage(err))
		return
	}
	if root == nil {
		return // empty, or only comments
	}
	m, ok := root.(map[string]any)
	if !ok {
		fail(0, "want a mapping of sections (%s) at the top level", strings.Join(sections[""], ", "))
		return
	}
	l.section(name, file, "", m, fail)
}

// section applies the keys of the YAML mapping m found at section path sec.
func (l *loader) section(name string, file *ast.File, sec string, m map[string]any, fail func(int, string, ...any)) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := k
		if sec != "" {
			path = sec + "." + k
		}
		v := m[k]
		line := lineOf(file, sec, k)
		if f, ok := fieldByPath[path]; ok {
			if v == nil {
				continue // "key:" with no value keeps the default
			}
			origin := name
			if line > 0 {
				origin += ":" + strconv.Itoa(line)
			}
			pv, err := f.parseYAML(v)
			l.store(f, origin, pv, err)
			continue
		}
		if _, ok := sections[path]; !ok {
			where := "at the top level"
			if sec != "" {
				where = "in " + sec
			}
			fail(line, "unknown key %q (allowed %s: %s)", path, where, strings.Join(sections[sec], ", "))
			continue
		}
		switch v := v.(type) {
		case nil:
		case map[string]any:
			l.section(name, file, path, v, fail)
		default:
			fail(line, "%s: want a mapping of settings (%s)", path, strings.Join(sections[path], ", "))
		}
	}
}

// lineOf finds the line of key in the mapping at section path sec, or 0
// when it cannot tell (for keys brought in by an alias or merge key).
func lineOf(file *ast.File, sec, key string) int {
	if len(file.Docs) == 0 {
		return 0
	}
	n := file.Docs[0].Body
	if sec != "" {
		p, err := yaml.PathString("$." + sec)
		if err != nil {
			return 0
		}
		if n, err = p.FilterFile(file); err != nil {
			return 0
		}
	}
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
			continue
		case *ast.TagNode:
			n = v.Value
			continue
		case *ast.MappingNode:
			for _, mv := range v.Values {
				if tok := mv.Key.GetToken(); tok != nil && tok.Value == key {
					return tok.Position.Line
				}
			}
		case *ast.MappingValueNode:
			if tok := v.Key.GetToken(); tok != nil && tok.Value == key {
				return tok.Position.Line
			}
		}
		return 0
	}
}

func yamlLine(err error) int {
	var yerr yaml.Error
	if errors.As(err, &yerr) && yerr.GetToken() != nil {
		return yerr.GetToken().Position.Line
	}
	return 0
}

// envSettings picks the SLUICE_* variables out of environ; later entries win.
func envSettings(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, envPrefix) {
			m[k] = v
		}
	}
	return m
}

// env applies SLUICE_* variables. One that names no setting is an error.
func (l *loader) env(env map[string]string) {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if k == envConfig || strings.HasPrefix(k, envTestPrefix) {
			continue
		}
		f, ok := fieldByEnv[k]
		if !ok {
			l.errs = append(l.errs, fmt.Errorf("unknown environment variable %s: no setting has that name (run sluice -h for the list)", k))
			continue
		}
		v, err := f.parseText(env[k])
		l.store(f, k, v, err)
	}
}

// flagValues records the setting flags in the order given; they are applied
// after the file and environment, so their values are kept as text until then.
type flagValues struct {
	set []flagSetting
}

type flagSetting struct {
	f    field
	text string
}

// settingFlag is the flag.Value of one setting.
type settingFlag struct {
	f  field
	fv *flagValues
}

func (s settingFlag) String() string { return "" }

func (s settingFlag) Set(text string) error {
	s.fv.set = append(s.fv.set, flagSetting{s.f, text})
	return nil
}

// IsBoolFlag lets "-webrtc.tcp_enabled" stand for "-webrtc.tcp_enabled=true".
func (s settingFlag) IsBoolFlag() bool { return s.f.kind() == "bool" }

func parseFlags(args []string) (*flagValues, string, error) {
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; usage is printed by load
	fs.Usage = func() {}
	configPath := fs.String("config", "", "")
	fv := &flagValues{}
	for _, f := range fields {
		fs.Var(settingFlag{f, fv}, f.path, "")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w (run sluice -h for the list of flags)", err)
	}
	if fs.NArg() > 0 {
		return nil, "", fmt.Errorf("unexpected argument %q: settings are flags, e.g. -config sluice.yml", fs.Arg(0))
	}
	return fv, *configPath, nil
}
