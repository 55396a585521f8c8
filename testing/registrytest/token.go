package registrytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"
)

// The token protocol's names: the registry accepts tokens from this issuer
// for this audience (its service).
const (
	tokenIssuerName = "registrytest"
	tokenService    = "registrytest"
)

// tokenIssuer signs registry bearer tokens (JWTs, ES256) with a self-signed
// certificate the registry lists as its only root.
type tokenIssuer struct {
	key   *ecdsa.PrivateKey
	cert  []byte // DER
	roots string // PEM bundle path given to the registry
}

func newTokenIssuer(rootsPath string) (*tokenIssuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "registrytest token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(rootsPath, block, 0o600); err != nil {
		return nil, err
	}
	return &tokenIssuer{key: key, cert: der, roots: rootsPath}, nil
}

// configYAML is the registry's "auth: token:" section. Nothing listens on
// the realm: clients present a token minted by Registry.Token.
func (ti *tokenIssuer) configYAML(baseURL string) string {
	return fmt.Sprintf("auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
		baseURL+"/token", tokenService, tokenIssuerName, ti.roots)
}

// Token returns a bearer token granting actions ("pull", "push") on
// repository ("demo/add"), valid for an hour. Without actions it grants
// nothing but passes the registry's authentication (GET /v2/).
func (r *Registry) Token(t testing.TB, repository string, actions ...string) string {
	t.Helper()
	if r.token == nil {
		t.Fatal("registrytest: Token needs a registry started WithTokenAuth")
	}
	tok, err := r.token.sign(repository, actions)
	if err != nil {
		t.Fatalf("registrytest: sign token: %v", err)
	}
	return tok
}

type tokenAccess struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ti *tokenIssuer) sign(repository string, actions []string) (string, error) {
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ti.cert)}}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuerName, "sub": "jetprop", "aud": tokenService,
		"exp": now.Add(time.Hour).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": randomHex(8), "access": []tokenAccess{},
	}
	if len(actions) > 0 {
		claims["access"] = []tokenAccess{{Type: "repository", Name: repository, Actions: actions}}
	}
	signingInput, err := joseSegments(header, claims)
	if err != nil {
		return "", err
	}
	sig, err := ti.es256(signingInput)
	if err != nil {
		return "", err
	}
	return signingInput + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func joseSegments(header, claims any) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c), nil
}

// es256 is the JWS ES256 signature: r and s, 32 bytes each, big-endian.
func (ti *tokenIssuer) es256(input string) ([]byte, error) {
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, ti.key, sum[:])
	if err != nil {
		return nil, err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig, nil
}
