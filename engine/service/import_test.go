package service

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jetprop/jetprop/engine"
	"github.com/jetprop/jetprop/engine/domain"
)

func TestImportTarget(t *testing.T) {
	hex := strings.Repeat("1a2b3c4d5e6f", 5) + "0000"
	tests := []struct {
		name, ref, as string
		want          engine.ArtifactRef
		wantErr       error
	}{
		{"tag", "localhost:5000/demo/add:v2", "", engine.ArtifactRef{Name: "add", Tag: "v2"}, nil},
		{"no tag", "localhost:5000/demo/add", "", engine.ArtifactRef{Name: "add", Tag: engine.DefaultTag}, nil},
		{"port only", "registry:5000/add", "", engine.ArtifactRef{Name: "add", Tag: engine.DefaultTag}, nil},
		{"digest", "reg.io/demo/add@sha256:" + hex, "", engine.ArtifactRef{Name: "add", Tag: "sha256-1a2b3c4d5e6f"}, nil},
		{"tag and digest", "reg.io/demo/add:v3@sha256:" + hex, "", engine.ArtifactRef{Name: "add", Tag: "v3"}, nil},
		{"given name", "reg.io/demo/add:v2", "calc", engine.ArtifactRef{Name: "calc", Tag: engine.DefaultTag}, nil},
		{"given name:tag", "reg.io/demo/add:v2", "calc:7", engine.ArtifactRef{Name: "calc", Tag: "7"}, nil},
		{"given digest", "reg.io/demo/add:v2", "sha256:" + hex, engine.ArtifactRef{}, domain.ErrInvalid},
		{"repository not a name", "reg.io/demo/my.module:1", "", engine.ArtifactRef{}, domain.ErrInvalid},
		{"empty", " ", "", engine.ArtifactRef{}, domain.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := importTarget(tc.ref, tc.as)
			if !errors.Is(err, tc.wantErr) || got != tc.want {
				t.Fatalf("importTarget(%q, %q) = %+v, %v; want %+v, %v", tc.ref, tc.as, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestImportOptions(t *testing.T) {
	tests := []struct {
		opts    ImportOptions
		wantErr bool
	}{
		{ImportOptions{}, false},
		{ImportOptions{Username: "u", Password: "p"}, false},
		{ImportOptions{Token: "t", PlainHTTP: true}, false},
		{ImportOptions{Username: "u"}, true},
		{ImportOptions{Password: "p"}, true},
		{ImportOptions{Username: "u", Password: "p", Token: "t"}, true},
	}
	for _, tc := range tests {
		if err := tc.opts.Validate(); (err != nil) != tc.wantErr || err != nil && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%v: Validate() = %v", tc.opts, err)
		}
	}
	secret := ImportOptions{Username: "alice", Password: "s3cret", PlainHTTP: true}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("import", "options", secret)
	for _, s := range []string{fmt.Sprint(secret), fmt.Sprintf("%+v", secret), logged.String()} {
		if strings.Contains(s, "s3cret") || !strings.Contains(s, "basic(alice)") {
			t.Errorf("options printed as %q", s)
		}
	}
	if s := (ImportOptions{Token: "tok3n"}).String(); strings.Contains(s, "tok3n") || !strings.Contains(s, "auth=token") {
		t.Errorf("token printed as %q", s)
	}
}
