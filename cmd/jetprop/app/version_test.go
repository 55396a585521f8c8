package app

import (
	"runtime/debug"
	"testing"
)

func TestBuildVersion(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}}
	dirty := append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	tests := []struct {
		name   string
		set    string
		module string
		vcs    []debug.BuildSetting
		want   string
	}{
		{name: "nothing known", set: "dev", module: "(devel)", want: "dev"},
		{name: "ldflags win", set: "v1.4.0", module: "v1.3.0", vcs: rev, want: "v1.4.0+0123456789ab"},
		{name: "go install of a version", set: "dev", module: "v1.3.0", want: "v1.3.0"},
		{name: "a build in a repository", set: "dev", module: "(devel)", vcs: rev, want: "dev+0123456789ab"},
		{name: "with changes", set: "dev", module: "(devel)", vcs: dirty, want: "dev+0123456789ab-dirty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: tc.module}, Settings: tc.vcs}
			if got := buildVersion(tc.set, bi); got != tc.want {
				t.Fatalf("buildVersion = %q, want %q", got, tc.want)
			}
		})
	}
}
