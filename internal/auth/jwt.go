package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// JWTConfig says how JWTs are verified. At least one key source is needed;
// each key verifies exactly one algorithm (the secret HS256, RSA keys RS256,
// EC P-256 keys ES256), so a token's "alg" header cannot change how it is
// checked.
type JWTConfig struct {
	Secret   string        `yaml:"secret"`    // HS256 shared secret, at least 32 bytes (RFC 7518 §3.2)
	KeyFile  string        `yaml:"key_file"`  // PEM file of public keys or certificates (RS256, ES256)
	JWKSFile string        `yaml:"jwks_file"` // JSON Web Key Set file (RS256, ES256); keys chosen by the token's "kid"
	Issuer   string        `yaml:"issuer"`    // if set, "iss" must equal it
	Audience string        `yaml:"audience"`  // if set, "aud" must contain it
	Leeway   time.Duration `yaml:"leeway"`    // clock skew allowed on exp and nbf; 0 = 30s; at most 5m
}

// Limits and defaults of JWT verification.
const (
	DefaultLeeway  = 30 * time.Second
	maxLeeway      = 5 * time.Minute
	minSecretBytes = 32
	maxTokenBytes  = 8 << 10
)

// Claim is the private claim, under the name "sluice", that says what a JWT
// allows, e.g.
//
//	{"sluice": {"actions": ["publish", "read"], "streams": ["cam-*"]}, "exp": 1767225600}
//
// Streams are path.Match patterns. A token without the claim, or with an
// empty list, allows nothing: unlike static tokens there is no "empty means
// all", because tokens are often minted by systems that know nothing of
// sluice.
type Claim struct {
	Actions []Action `json:"actions"`
	Streams []string `json:"streams"`
}

// claims is the payload sluice reads: the registered claims (exp, nbf, iss,
// aud) and the sluice claim.
type claims struct {
	jwt.RegisteredClaims
	Sluice *Claim `json:"sluice,omitempty"`
}

// JWT is an Authenticator that accepts signed JSON Web Tokens (RFC 7519).
// "exp" is required and "nbf" honoured, both with the configured leeway.
type JWT struct {
	keys   []verifyKey
	algs   []string
	parser *jwt.Parser
}

// Errors of key selection, turned into reasons by jwtReason.
var (
	errUnknownKid = errors.New("unknown kid")
	errNoKey      = errors.New("no key for algorithm")
)

// NewJWT loads the keys named in c and returns the Authenticator.
func NewJWT(c JWTConfig) (*JWT, error) { return newJWT(c, nil) }

// newJWT is NewJWT with a clock, for tests; nil means time.Now.
func newJWT(c JWTConfig, now func() time.Time) (*JWT, error) {
	var keys []verifyKey
	if c.Secret != "" {
		if len(c.Secret) < minSecretBytes {
			return nil, fmt.Errorf("secret: %d bytes is too short for HS256 (at least %d)", len(c.Secret), minSecretBytes)
		}
		keys = append(keys, verifyKey{alg: algHS256, key: []byte(c.Secret)})
	}
	for _, src := range []struct {
		field, file string
		parse       func([]byte) ([]verifyKey, error)
	}{{"key_file", c.KeyFile, parsePEMKeys}, {"jwks_file", c.JWKSFile, parseJWKS}} {
		if src.file == "" {
			continue
		}
		data, err := os.ReadFile(src.file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.field, err)
		}
		ks, err := src.parse(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", src.field, src.file, err)
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		return nil, errors.New("no key (set secret, key_file or jwks_file)")
	}
	leeway := c.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	if leeway < 0 || leeway > maxLeeway {
		return nil, fmt.Errorf("leeway: %s is out of range (allowed 0..%s)", leeway, maxLeeway)
	}

	j := &JWT{keys: keys}
	for _, k := range keys {
		if !slices.Contains(j.algs, k.alg) {
			j.algs = append(j.algs, k.alg)
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(j.algs),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(leeway),
	}
	if now != nil {
		opts = append(opts, jwt.WithTimeFunc(now))
	}
	if c.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(c.Issuer))
	}
	if c.Audience != "" {
		opts = append(opts, jwt.WithAudience(c.Audience))
	}
	j.parser = jwt.NewParser(opts...)
	return j, nil
}

// Authorize verifies r's token and checks that its sluice claim allows the
// action on the stream.
func (j *JWT) Authorize(_ context.Context, r Request) error {
	if r.Token == "" {
		return ErrNoToken
	}
	if len(r.Token) > maxTokenBytes {
		return fmt.Errorf("%w: token longer than %d bytes", ErrUnauthenticated, maxTokenBytes)
	}
	var cl claims
	tok, err := j.parser.ParseWithClaims(r.Token, &cl, j.keyFor)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrUnauthenticated, j.reason(tok, err))
	}
	if cl.Sluice == nil {
		return fmt.Errorf("%w: token has no sluice claim", ErrForbidden)
	}
	if !(grant{actions: cl.Sluice.Actions, streams: cl.Sluice.Streams}).allows(r.Action, r.Stream) {
		return forbidden("token", r.Action, r.Stream)
	}
	return nil
}

// keyFor returns the keys that may verify tok: those pinned to its
// algorithm and, when both the token and the key name one, with its kid.
// The parser has already rejected algorithms no key is pinned to.
func (j *JWT) keyFor(tok *jwt.Token) (any, error) {
	alg := tok.Method.Alg()
	kid, _ := tok.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range j.keys {
		if k.alg == alg && (kid == "" || k.kid == "" || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	switch {
	case len(set.Keys) > 0:
		return set, nil
	case kid != "":
		return nil, errUnknownKid
	}
	return nil, errNoKey
}

// reason turns a parse error into a short reason that holds nothing from
// the token but its algorithm name (one of the library's registered names).
func (j *JWT) reason(tok *jwt.Token, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case tok != nil && tok.Method != nil && !slices.Contains(j.algs, tok.Method.Alg()):
		return fmt.Sprintf("algorithm %s not allowed", tok.Method.Alg())
	case errors.Is(err, errUnknownKid):
		return "unknown key id"
	case errors.Is(err, errNoKey):
		return "no key for the token's algorithm"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "unsupported algorithm"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "invalid signature"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "token has no exp"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return "invalid token"
}
