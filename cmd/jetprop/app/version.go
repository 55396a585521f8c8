package app

import (
	"runtime/debug"
	"sync"
)

// revisionLen is how many hex digits of the VCS revision a version shows.
const revisionLen = 12

// BuildVersion is the version GET /health, the metrics and `jetprop
// version` report: Version when set at build time (-ldflags), else the
// module version of a `go install ...@version` build, else "dev"; followed
// by "+" and the VCS revision the binary was built from, and "-dirty" when
// its work tree had changes (Go stamps both into builds in a repository).
var BuildVersion = sync.OnceValue(func() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	return buildVersion(Version, bi)
})

func buildVersion(set string, bi *debug.BuildInfo) string {
	v := set
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(len(s.Value), revisionLen)]
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return v
	}
	return v + "+" + rev + dirty
}
