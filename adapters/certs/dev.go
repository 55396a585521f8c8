package certs

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// DefaultDevHosts are the names of the development server certificate
// unless others are given.
var DefaultDevHosts = []string{"localhost", "127.0.0.1", "::1"}

// File names in a development directory.
const (
	DevCA         = "ca.pem"
	DevCAKey      = "ca-key.pem"
	DevServer     = "server.pem"
	DevServerKey  = "server-key.pem"
	devCertSuffix = ".pem"
	devKeySuffix  = "-key.pem"
)

// ErrExists: a file Dev would write is there already (and Force is off).
var ErrExists = errors.New("certs: file exists")

// DevConfig declares a development CA and what it signs.
type DevConfig struct {
	Dir string // where the PEM files go (made 0700 if missing)
	// Hosts are the server certificate's names (DNS names, IP
	// addresses); none makes no server certificate.
	Hosts []string
	// Devices get a client certificate each, whose common name is the
	// device id.
	Devices []string
	// Force replaces files that exist, the CA too. Without it, a CA in
	// Dir (ca.pem and ca-key.pem) is used to sign, and any other file
	// that exists is an error.
	Force    bool
	Validity time.Duration // of the server and device certificates (default DefaultLeafValidity)
}

func (c *DevConfig) setDefaults() {
	c.Validity = cmp.Or(c.Validity, DefaultLeafValidity)
}

// Validate fills the defaults and checks the names.
func (c *DevConfig) Validate() error {
	c.setDefaults()
	if c.Dir == "" {
		return errors.New("certs: an output directory is required")
	}
	for _, h := range c.Hosts {
		if h == "" || strings.ContainsAny(h, " /,") {
			return fmt.Errorf("certs: host %q: want a DNS name or an IP address", h)
		}
	}
	seen := map[string]bool{}
	for _, d := range c.Devices {
		if err := devFileName(d); err != nil {
			return err
		}
		if seen[d] {
			return fmt.Errorf("certs: device %q named twice", d)
		}
		seen[d] = true
	}
	return nil
}

// devFileName checks that a device id makes a safe file name of its own.
func devFileName(id string) error {
	ok := id != "" && !strings.HasPrefix(id, ".") && strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
	switch {
	case !ok:
		return fmt.Errorf("certs: device %q: want letters, digits, '.', '_' or '-' (it names its files)", id)
	case id == "ca" || id == "server" || strings.HasSuffix(id, "-key"):
		return fmt.Errorf("certs: device %q: the name is taken by the CA's or the server's files", id)
	}
	return nil
}

// DevFiles are the paths Dev wrote (absolute).
type DevFiles struct {
	Dir       string
	CA, CAKey string
	ReusedCA  bool   // the CA was in Dir already
	Server    string // "" without hosts
	ServerKey string
	Devices   []DevDevice
}

// DevDevice is a device's client certificate and key.
type DevDevice struct{ ID, Cert, Key string }

// Dev makes (or, without Force, reuses) a CA in cfg.Dir, and has it sign
// a server certificate for cfg.Hosts and a client certificate for each
// device. Keys are written 0600, certificates 0644. Nothing is written
// when a file it would write exists and Force is off.
func Dev(cfg DevConfig) (DevFiles, error) {
	if err := cfg.Validate(); err != nil {
		return DevFiles{}, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return DevFiles{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return DevFiles{}, fmt.Errorf("certs: %w", err)
	}
	out := devPaths(dir, cfg)
	ca, err := devAuthority(&out, cfg.Force)
	if err != nil {
		return DevFiles{}, err
	}
	files, err := devSign(ca, out, cfg)
	if err != nil {
		return DevFiles{}, err
	}
	return out, writeAll(files, cfg.Force)
}

func devPaths(dir string, cfg DevConfig) DevFiles {
	out := DevFiles{Dir: dir, CA: filepath.Join(dir, DevCA), CAKey: filepath.Join(dir, DevCAKey)}
	if len(cfg.Hosts) > 0 {
		out.Server, out.ServerKey = filepath.Join(dir, DevServer), filepath.Join(dir, DevServerKey)
	}
	for _, d := range cfg.Devices {
		out.Devices = append(out.Devices, DevDevice{ID: d, Cert: filepath.Join(dir, d+devCertSuffix), Key: filepath.Join(dir, d+devKeySuffix)})
	}
	return out
}

// devAuthority loads the CA in the directory, or makes a new one (always
// with force). A CA certificate without its key, or the reverse, is an
// error: the other file would be overwritten.
func devAuthority(out *DevFiles, force bool) (*Authority, error) {
	if !force {
		certThere, keyThere := exists(out.CA), exists(out.CAKey)
		switch {
		case certThere && keyThere:
			out.ReusedCA = true
			return LoadAuthority(out.CA, out.CAKey)
		case certThere || keyThere:
			return nil, fmt.Errorf("%w: %s or %s alone (both make a CA to reuse; --force makes a new one)", ErrExists, out.CA, out.CAKey)
		}
	}
	return NewAuthority("jetprop development CA", DefaultCAValidity)
}

// pemFile is one file to write.
type pemFile struct {
	path string
	data []byte
	perm os.FileMode
}

// devSign signs the certificates and returns every file to write.
func devSign(ca *Authority, out DevFiles, cfg DevConfig) ([]pemFile, error) {
	var files []pemFile
	add := func(cert, key string, c tls.Certificate) error {
		k, err := KeyPEM(c.PrivateKey)
		if err != nil {
			return err
		}
		files = append(files, pemFile{cert, CertPEM(c), 0o644}, pemFile{key, k, 0o600})
		return nil
	}
	if !out.ReusedCA {
		if err := add(out.CA, out.CAKey, ca.Certificate()); err != nil {
			return nil, err
		}
	}
	if out.Server != "" {
		c, err := ca.ServerCert(cfg.Hosts, cfg.Validity)
		if err == nil {
			err = add(out.Server, out.ServerKey, c)
		}
		if err != nil {
			return nil, err
		}
	}
	for _, d := range out.Devices {
		c, err := ca.ClientCert(d.ID, cfg.Validity)
		if err == nil {
			err = add(d.Cert, d.Key, c)
		}
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// writeAll writes files; unless force, it first checks that none exists,
// so a refusal writes nothing.
func writeAll(files []pemFile, force bool) error {
	if !force {
		var there []string
		for _, f := range files {
			if exists(f.path) {
				there = append(there, filepath.Base(f.path))
			}
		}
		if len(there) > 0 {
			slices.Sort(there)
			return fmt.Errorf("%w in %s: %s (--force replaces them)", ErrExists, filepath.Dir(files[0].path), strings.Join(there, ", "))
		}
	}
	for _, f := range files {
		if err := writeFile(f.path, f.data, f.perm, force); err != nil {
			return fmt.Errorf("certs: %w", err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// writeFile writes data to path with perm. Unless force, it fails if
// path exists; with force it replaces path through a temp file and a
// rename, so a reader never sees half a file, nor a key with loose
// permissions.
func writeFile(path string, data []byte, perm os.FileMode, force bool) error {
	if force {
		return replaceFile(path, data, perm)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err = errors.Join(err, f.Close()); err != nil {
		os.Remove(path)
	}
	return err
}

func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(perm), tmp.Close())
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
