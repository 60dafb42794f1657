// SPDX-License-Identifier: MIT

package cli

import (
	"runtime/debug"
	"testing"
)

// What a build says of itself, by how it was built: the linker's values
// win; a go install from a module proxy has the module version; a build
// in a git checkout its commit, the commit's date and whether it had
// changes; a build with none of it is "devel".
func TestVersionFromBuildInfo(t *testing.T) {
	vcs := func(rev, at, mod string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: mod}}
	}
	for _, tt := range []struct {
		what                   string
		version, commit, date  string
		bi                     *debug.BuildInfo
		wantV, wantC, wantDate string
		wantModified           bool
	}{
		{what: "release build", version: "1.2.3", commit: "abc", date: "2026-12-01T00:00:00Z",
			bi:    &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261201000000-def000000000"}, Settings: vcs("def", "2026-11-30T00:00:00Z", "false")},
			wantV: "1.2.3", wantC: "abc", wantDate: "2026-12-01T00:00:00Z"},
		{what: "go install @v1.4.0", bi: &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, wantV: "1.4.0"},
		{what: "go install @latest of a pre-release", bi: &debug.BuildInfo{Main: debug.Module{Version: "v2.0.0-rc.1"}}, wantV: "2.0.0-rc.1"},
		{what: "go build in a git checkout with changes",
			bi:    &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206054751-82300ccb3c01+dirty"}, Settings: vcs("82300ccb3c013d21c4e879eaf2a5c88bc8674a71", "2026-12-06T05:47:51Z", "true")},
			wantV: "0.0.0-20261206054751-82300ccb3c01+dirty", wantC: "82300ccb3c013d21c4e879eaf2a5c88bc8674a71", wantDate: "2026-12-06T05:47:51Z", wantModified: true},
		{what: "go build without version control", bi: &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, wantV: "devel"},
		{what: "no build info", wantV: "devel"},
		{what: "a version set with its v", version: "v1.2.3", wantV: "1.2.3"},
	} {
		v, c, d, m := fromBuildInfo(tt.version, tt.commit, tt.date, tt.bi)
		if v != tt.wantV || c != tt.wantC || d != tt.wantDate || m != tt.wantModified {
			t.Errorf("%s: %q %q %q %v, want %q %q %q %v", tt.what, v, c, d, m, tt.wantV, tt.wantC, tt.wantDate, tt.wantModified)
		}
	}
}
