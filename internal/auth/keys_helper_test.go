package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValue(func() (k struct {
	rsa1, rsa2 *rsa.PrivateKey
	ec1, ec2   *ecdsa.PrivateKey
}) {
	var err error
	if k.rsa1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		panic(err)
	}
	if k.ec1, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	if k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		panic(err)
	}
	return k
})

// testSecret is an HS256 secret of the minimum length.
const testSecret = "0123456789abcdef0123456789abcdef"

// pemPublic encodes pub as a PKIX "PUBLIC KEY" block.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// writeFile writes data into the test's temporary directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the JWK of a public key, as an identity provider would
// publish it.
func jwkOf(kid string, pub any) map[string]string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
	case *ecdsa.PublicKey:
		raw, err := k.Bytes()
		if err != nil {
			panic(err)
		}
		return map[string]string{"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
			"x": b64u(raw[1:33]), "y": b64u(raw[33:])}
	}
	panic("unexpected key type")
}

// jwksFile writes a JWKS of the given keys and returns its path.
func jwksFile(t testing.TB, keys ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "jwks.json", b)
}

// tokenSpec describes a JWT to mint.
type tokenSpec struct {
	method  jwt.SigningMethod
	key     any    // private key, or []byte for HS256
	kid     string // "" = no kid header
	actions []Action
	streams []string
	noClaim bool          // omit the sluice claim
	exp     time.Duration // relative to now; 0 = no exp
	nbf     time.Duration // relative to now; 0 = no nbf
	iss     string
	aud     string
}

// mint signs spec at time now.
func mint(t testing.TB, now time.Time, s tokenSpec) string {
	t.Helper()
	cl := claims{}
	if !s.noClaim {
		cl.Sluice = &Claim{Actions: s.actions, Streams: s.streams}
	}
	if s.exp != 0 {
		cl.ExpiresAt = jwt.NewNumericDate(now.Add(s.exp))
	}
	if s.nbf != 0 {
		cl.NotBefore = jwt.NewNumericDate(now.Add(s.nbf))
	}
	cl.Issuer = s.iss
	if s.aud != "" {
		cl.Audience = jwt.ClaimStrings{s.aud}
	}
	tok := jwt.NewWithClaims(s.method, cl)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	str, err := tok.SignedString(s.key)
	if err != nil {
		t.Fatal(err)
	}
	return str
}
