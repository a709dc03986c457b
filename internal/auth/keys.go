package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Algorithms sluice verifies. Each key is pinned to exactly one of them, so a
// token cannot pick how its signature is checked (no "none", no HS256 with
// an RSA public key as the HMAC secret).
const (
	algHS256 = "HS256"
	algRS256 = "RS256"
	algES256 = "ES256"
)

// minRSABits is the smallest RSA modulus accepted (NIST SP 800-131A).
const minRSABits = 2048

// verifyKey is one key and the one algorithm it verifies.
type verifyKey struct {
	kid string // "" when the source does not name keys (PEM, secret)
	alg string
	key any // []byte (HS256), *rsa.PublicKey (RS256), *ecdsa.PublicKey (ES256)
}

// publicKeyAlg pins a parsed public key to its algorithm.
func publicKeyAlg(pub any) (verifyKey, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return verifyKey{}, fmt.Errorf("RSA key of %d bits is too short (at least %d)", k.N.BitLen(), minRSABits)
		}
		return verifyKey{alg: algRS256, key: k}, nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return verifyKey{}, fmt.Errorf("EC key on curve %s is not supported (only P-256 for ES256)", k.Curve.Params().Name)
		}
		return verifyKey{alg: algES256, key: k}, nil
	}
	return verifyKey{}, fmt.Errorf("%T keys are not supported (RSA for RS256, EC P-256 for ES256)", pub)
}

// parsePEMKeys reads every public key in a PEM file: PUBLIC KEY (PKIX),
// RSA PUBLIC KEY (PKCS #1) and CERTIFICATE blocks. Private keys are refused
// rather than used, since a verifier has no business holding one.
func parsePEMKeys(data []byte) ([]verifyKey, error) {
	var keys []verifyKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var pub any
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
		case "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
				pub = cert.PublicKey
			}
		default:
			if strings.Contains(block.Type, "PRIVATE") {
				return nil, fmt.Errorf("PEM block %d is a private key; give only the public key", n)
			}
			return nil, fmt.Errorf("PEM block %d: type %q is not supported (PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", n, block.Type)
		}
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		k, err := publicKeyAlg(pub)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no PEM public key found")
	}
	return keys, nil
}

// jwk is one JSON Web Key (RFC 7517 §4, RFC 7518 §6).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS reads a JSON Web Key Set (RFC 7517 §5). RSA keys become RS256
// and EC P-256 keys ES256. Keys for encryption ("use": "enc"), of other
// types or for other algorithms are skipped; a malformed RSA or EC key is an
// error, as is a set with no usable key or two keys with the same kid.
func parseJWKS(data []byte) ([]verifyKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []verifyKey
	var skipped []string
	kids := map[string]int{}
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if j.Use != "" && j.Use != "sig" {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: use %.20q", i, j.Use))
			continue
		}
		k, err := j.verifyKey()
		if errors.Is(err, errSkipKey) {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if k.kid != "" {
			if prev, dup := kids[k.kid]; dup {
				return nil, fmt.Errorf("keys[%d]: kid %q is also the kid of keys[%d]", i, k.kid, prev)
			}
			kids[k.kid] = i
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("no usable key (%s)", strings.Join(skipped, "; "))
		}
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// errSkipKey marks a well-formed key sluice does not use.
var errSkipKey = errors.New("not supported")

// verifyKey decodes j and pins it to its algorithm.
func (j jwk) verifyKey() (verifyKey, error) {
	var k verifyKey
	var err error
	switch j.Kty {
	case "RSA":
		if j.Alg != "" && j.Alg != algRS256 {
			return k, fmt.Errorf("RSA alg %.20q: %w (RS256 only)", j.Alg, errSkipKey)
		}
		k, err = j.rsaKey()
	case "EC":
		if j.Alg != "" && j.Alg != algES256 || j.Crv != "P-256" {
			return k, fmt.Errorf("EC alg %.20q crv %.20q: %w (ES256 on P-256 only)", j.Alg, j.Crv, errSkipKey)
		}
		k, err = j.ecKey()
	default:
		return k, fmt.Errorf("kty %.20q: %w (RSA, EC)", j.Kty, errSkipKey)
	}
	k.kid = j.Kid
	return k, err
}

// rsaKey decodes n and e (RFC 7518 §6.3.1).
func (j jwk) rsaKey() (verifyKey, error) {
	n, err := b64(j.N)
	if err != nil || len(n) == 0 {
		return verifyKey{}, fmt.Errorf("RSA n: not base64url (%v)", err)
	}
	e, err := b64(j.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return verifyKey{}, errors.New("RSA e: not a base64url integer of 1 to 4 bytes")
	}
	exp := new(big.Int).SetBytes(e)
	if exp.Int64() < 3 || exp.Bit(0) == 0 || exp.Int64() > 1<<31-1 {
		return verifyKey{}, fmt.Errorf("RSA e: %d is not a usable public exponent", exp.Int64())
	}
	return publicKeyAlg(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exp.Int64())})
}

// ecKey decodes x and y of a P-256 key (RFC 7518 §6.2.1) and checks that
// the point is on the curve.
func (j jwk) ecKey() (verifyKey, error) {
	x, errX := b64(j.X)
	y, errY := b64(j.Y)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return verifyKey{}, errors.New("EC x, y: not base64url of 32 bytes each")
	}
	point := append(append([]byte{4}, x...), y...) // SEC 1 uncompressed form
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return verifyKey{}, fmt.Errorf("EC x, y: %w", err)
	}
	return publicKeyAlg(pub)
}

// b64 decodes base64url, with or without padding (RFC 7515 §2 says without;
// some generators pad).
func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
