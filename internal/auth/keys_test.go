package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// pemPrivate encodes a private key as PKCS #8, which key files must refuse.
func pemPrivate(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// pemCert wraps pub in a self-signed certificate.
func pemCert(t testing.TB, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestParsePEMKeys(t *testing.T) {
	k := testKeys()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.rsa2.PublicKey)})
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

	for _, tc := range []struct {
		name string
		data []byte
		algs []string // want, in order
		err  string
	}{
		{"rsa pkix", pemPublic(t, &k.rsa1.PublicKey), []string{algRS256}, ""},
		{"rsa pkcs1", pkcs1, []string{algRS256}, ""},
		{"ec", pemPublic(t, &k.ec1.PublicKey), []string{algES256}, ""},
		{"certificate", pemCert(t, k.ec1), []string{algES256}, ""},
		{"several", cat(pemPublic(t, &k.rsa1.PublicKey), pemPublic(t, &k.ec1.PublicKey)), []string{algRS256, algES256}, ""},
		{"empty", nil, nil, "no PEM public key"},
		{"not pem", []byte("hello"), nil, "no PEM public key"},
		{"private", pemPrivate(t, k.ec1), nil, "private key"},
		{"short rsa", pemPublic(t, &small.PublicKey), nil, "too short"},
		{"p384", pemPublic(t, &p384.PublicKey), nil, "P-384"},
		{"other block", pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: []byte{1}}), nil, "not supported"},
		{"garbage der", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), nil, "PEM block 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parsePEMKeys(tc.data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var algs []string
			for _, k := range keys {
				algs = append(algs, k.alg)
			}
			if strings.Join(algs, ",") != strings.Join(tc.algs, ",") {
				t.Fatalf("algorithms %v, want %v", algs, tc.algs)
			}
		})
	}
}

// jwksCases double as fuzz seeds.
func jwksCases(t testing.TB) []struct {
	name string
	data string
	kids string // kids of the usable keys, comma-separated
	err  string
} {
	k := testKeys()
	js := func(keys ...map[string]string) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(out, kv[i])
			} else {
				out[kv[i]] = kv[i+1]
			}
		}
		return out
	}
	r1, r2, e1 := jwkOf("r1", &k.rsa1.PublicKey), jwkOf("r2", &k.rsa2.PublicKey), jwkOf("e1", &k.ec1.PublicKey)
	return []struct {
		name string
		data string
		kids string
		err  string
	}{
		{"two rsa and ec", js(r1, r2, e1), "r1,r2,e1", ""},
		{"no alg, no use", js(with(r1, "alg", "", "use", ""), with(e1, "alg", "", "use", "")), "r1,e1", ""},
		{"padded base64", js(with(r1, "e", "AQAB")), "r1", ""},
		{"skips enc keys", js(with(r1, "use", "enc"), r2), "r2", ""},
		{"skips other algs", js(with(r1, "alg", "RS512"), with(e1, "crv", "P-384", "alg", "ES384"), r2), "r2", ""},
		{"skips oct and OKP", js(map[string]string{"kty": "oct", "k": "AAAA"}, map[string]string{"kty": "OKP"}, e1), "e1", ""},
		{"only unusable", js(map[string]string{"kty": "oct", "k": "AAAA"}), "", "no usable key"},
		{"empty set", `{"keys":[]}`, "", "no keys"},
		{"not json", `{`, "", "not a JSON Web Key Set"},
		{"key not object", `{"keys":[1]}`, "", "keys[0]"},
		{"duplicate kid", js(r1, with(r2, "kid", "r1")), "", "also the kid"},
		{"bad n", js(with(r1, "n", "!!")), "", "RSA n"},
		{"bad e", js(with(r1, "e", "")), "", "RSA e"},
		{"even e", js(with(r1, "e", "AQAA")), "", "public exponent"},
		{"short rsa", js(with(r1, "n", b64u(big.NewInt(1<<62-1).Bytes()))), "", "too short"},
		{"ec short x", js(with(e1, "x", "AAAA")), "", "32 bytes"},
		{"ec off curve", js(with(e1, "y", e1["x"])), "", "EC x, y"},
	}
}

func TestParseJWKS(t *testing.T) {
	for _, tc := range jwksCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS([]byte(tc.data))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kids []string
			for _, k := range keys {
				kids = append(kids, k.kid)
			}
			if got := strings.Join(kids, ","); got != tc.kids {
				t.Fatalf("kids %q, want %q", got, tc.kids)
			}
		})
	}
}

// FuzzParseJWKS checks that no key set, however malformed, panics, and that
// every key accepted is pinned to an algorithm matching its type.
func FuzzParseJWKS(f *testing.F) {
	for _, tc := range jwksCases(f) {
		f.Add([]byte(tc.data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			switch k.key.(type) {
			case *rsa.PublicKey:
				if k.alg != algRS256 {
					t.Fatalf("RSA key pinned to %s", k.alg)
				}
			case *ecdsa.PublicKey:
				if k.alg != algES256 {
					t.Fatalf("EC key pinned to %s", k.alg)
				}
			default:
				t.Fatalf("unexpected key %T", k.key)
			}
		}
	})
}
