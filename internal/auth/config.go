package auth

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Config is the authorization policy, the "auth:" section of sluice.yml.
// The zero value allows everything.
//
//	auth:
//	  default: deny              # what no rule covers: allow (default) or deny
//	  rules:                     # first match decides
//	    - streams: "cam-*"
//	      actions: [publish]
//	      mode: static
//	      tokens:
//	        - token: "a-long-random-camera-token"
//	    - actions: [read]
//	      mode: allow
//	    - actions: [api]
//	      mode: jwt
//	      jwt: {jwks_file: /etc/sluice/jwks.json}
type Config struct {
	Default string       `yaml:"default"` // "allow" (also when empty) or "deny": the answer when no rule covers a request
	Rules   []RuleConfig `yaml:"rules"`   // tried in order; the first that covers a request decides it
}

// RuleConfig is one rule: which requests it covers and how it decides them.
type RuleConfig struct {
	Streams  string         `yaml:"streams"`  // path.Match pattern; empty = "*" (every stream, and server-wide API calls)
	Actions  []string       `yaml:"actions"`  // publish, read, api; empty = all
	Mode     string         `yaml:"mode"`     // allow, deny, static, jwt or callback
	Tokens   []StaticToken  `yaml:"tokens"`   // mode static
	JWT      JWTConfig      `yaml:"jwt"`      // mode jwt
	Callback CallbackConfig `yaml:"callback"` // mode callback
}

// The modes of a rule.
const (
	ModeAllow    = "allow"
	ModeDeny     = "deny"
	ModeStatic   = "static"
	ModeJWT      = "jwt"
	ModeCallback = "callback"
)

// fieldError is one invalid setting, named by its yaml path.
type fieldError struct {
	path string
	msg  string
}

func (e *fieldError) Error() string { return e.path + ": " + e.msg }

// Validate checks the policy without reading key files and reports every
// invalid setting, joined with errors.Join. Each error names the setting by
// its yaml path, e.g. "auth.rules[1].jwt.secret: 12 bytes is too short for
// HS256 (at least 32)".
func (c Config) Validate() error {
	var v validator
	if c.Default != "" && c.Default != ModeAllow && c.Default != ModeDeny {
		v.add("auth.default", "%.40q is not allowed (allowed: allow, deny)", c.Default)
	}
	covered := map[Action]int{} // action → first rule that decides it on every stream
	for i, rc := range c.Rules {
		p := fmt.Sprintf("auth.rules[%d]", i)
		rc.validate(&v, p)
		acts, err := parseActions(rc.Actions)
		if err != nil {
			continue
		}
		shadowed, by := true, -1
		for _, a := range acts {
			j, ok := covered[a]
			shadowed = shadowed && ok
			by = max(by, j)
		}
		if shadowed {
			v.add(p, "never used: rules[%d] and earlier cover all its requests", by)
			continue
		}
		if rc.Streams != "" && rc.Streams != "*" {
			continue // covers some streams only
		}
		for _, a := range acts {
			if _, ok := covered[a]; !ok {
				covered[a] = i
			}
		}
	}
	return errors.Join(v.errs...)
}

// validate checks one rule; p is its path.
func (rc RuleConfig) validate(v *validator, p string) {
	if rc.Streams != "" {
		if err := checkPattern(rc.Streams); err != nil {
			v.add(p+".streams", "%v", err)
		}
	}
	v.actions(p+".actions", rc.Actions)
	switch rc.Mode {
	case ModeAllow, ModeDeny:
	case ModeStatic:
		rc.validateStatic(v, p)
	case ModeJWT:
		validateJWT(v, p+".jwt", rc.JWT)
	case ModeCallback:
		validateCallback(v, p+".callback", rc.Callback)
	case "":
		v.add(p+".mode", "missing (allowed: allow, deny, static, jwt, callback)")
	default:
		v.add(p+".mode", "%.40q is not allowed (allowed: allow, deny, static, jwt, callback)", rc.Mode)
	}
	// Settings of another mode are most likely a mistake in the mode.
	if len(rc.Tokens) > 0 && rc.Mode != ModeStatic {
		v.add(p+".tokens", "set, but only mode static uses it (mode is %.40q)", rc.Mode)
	}
	if rc.JWT != (JWTConfig{}) && rc.Mode != ModeJWT {
		v.add(p+".jwt", "set, but only mode jwt uses it (mode is %.40q)", rc.Mode)
	}
	cb := rc.Callback
	if (cb.URL != "" || cb.Timeout != 0 || cb.CacheTTL != 0 || cb.CacheSize != 0 || len(cb.Headers) > 0) && rc.Mode != ModeCallback {
		v.add(p+".callback", "set, but only mode callback uses it (mode is %.40q)", rc.Mode)
	}
}

func (rc RuleConfig) validateStatic(v *validator, p string) {
	if len(rc.Tokens) == 0 {
		v.add(p+".tokens", "empty (mode static needs at least one token)")
	}
	seen := map[[sha256.Size]byte]int{}
	for i, t := range rc.Tokens {
		tp := fmt.Sprintf("%s.tokens[%d]", p, i)
		if t.Token == "" {
			v.add(tp+".token", "empty")
		} else {
			d := sha256.Sum256([]byte(t.Token))
			if j, dup := seen[d]; dup {
				v.add(tp+".token", "same as tokens[%d].token", j)
			}
			seen[d] = i
		}
		v.actions(tp+".actions", t.Actions)
		for k, s := range t.Streams {
			if err := checkPattern(s); err != nil {
				v.add(fmt.Sprintf("%s.streams[%d]", tp, k), "%v", err)
			}
		}
	}
}

func validateJWT(v *validator, p string, c JWTConfig) {
	if c.Secret == "" && c.KeyFile == "" && c.JWKSFile == "" {
		v.add(p, "no key (mode jwt needs secret for HS256, or key_file or jwks_file for RS256/ES256)")
	}
	if c.Secret != "" && len(c.Secret) < minSecretBytes {
		v.add(p+".secret", "%d bytes is too short for HS256 (at least %d)", len(c.Secret), minSecretBytes)
	}
	v.durRange(p+".leeway", c.Leeway, 0, maxLeeway)
}

func validateCallback(v *validator, p string, c CallbackConfig) {
	if c.URL == "" {
		v.add(p+".url", "empty (mode callback needs a URL)")
	} else if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL is not quoted back: it may carry a credential.
		v.add(p+".url", "not an absolute http:// or https:// URL")
	}
	v.durRange(p+".timeout", c.Timeout, 0, maxCallbackTimeout)
	if c.CacheSize < 0 || c.CacheSize > maxCacheSize {
		v.add(p+".cache_size", "%d is out of range (allowed 0..%d; 0 = %d)", c.CacheSize, maxCacheSize, DefaultCacheSize)
	}
}

// validator collects fieldErrors.
type validator struct {
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &fieldError{path: path, msg: fmt.Sprintf(format, args...)})
}

func (v *validator) actions(path string, list []string) {
	for i, s := range list {
		if !Action(s).valid() {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%.40q is not allowed (allowed: publish, read, api)", s)
		}
	}
}

func (v *validator) durRange(path string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.add(path, "%s is out of range (allowed %s..%s)", d, lo, hi)
	}
}

// New validates c, loads its key files and returns the policy. client makes
// the callback requests (nil: a plain http.Client).
func New(c Config, client *http.Client) (Authenticator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var def Authenticator = AllowAll{}
	if c.Default == ModeDeny {
		def = noRule{}
	}
	if len(c.Rules) == 0 {
		return def, nil
	}
	rules := make([]Rule, len(c.Rules))
	for i, rc := range c.Rules {
		a, err := rc.build(client)
		if err != nil {
			return nil, fmt.Errorf("auth.rules[%d].%w", i, err)
		}
		acts, _ := parseActions(rc.Actions) // validated
		if len(rc.Actions) == 0 {
			acts = nil
		}
		rules[i] = Rule{Streams: rc.Streams, Actions: acts, Auth: a}
	}
	return NewRules(rules, def)
}

// build returns the rule's Authenticator. Errors start with the name of the
// setting below the rule ("jwt.key_file: ...").
func (rc RuleConfig) build(client *http.Client) (Authenticator, error) {
	switch rc.Mode {
	case ModeAllow:
		return AllowAll{}, nil
	case ModeDeny:
		return DenyAll{}, nil
	case ModeStatic:
		s, err := NewStatic(rc.Tokens)
		if err != nil {
			return nil, err
		}
		return s, nil
	case ModeJWT:
		j, err := NewJWT(rc.JWT)
		if err != nil {
			return nil, fmt.Errorf("jwt.%w", err)
		}
		return j, nil
	case ModeCallback:
		cb, err := NewCallback(rc.Callback, client)
		if err != nil {
			return nil, fmt.Errorf("callback.%w", err)
		}
		return cb, nil
	}
	return nil, fmt.Errorf("mode: %q is not allowed", rc.Mode)
}
