package buildinfo

import (
	"encoding/json"
	"runtime"
	"runtime/debug"
	"slices"
	"testing"
)

const commit = "b4f7f6bfac57f394cee7ec2774e936924d9b37c6"

// build is a debug.BuildInfo as the go command records it for Coffer:
// main module version mainVersion, the given vcs settings and the
// libraries Info reports.
func build(mainVersion string, vcs ...debug.BuildSetting) *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.27.3",
		Path:      "github.com/coffer-backup/coffer/cmd/coffer",
		Main:      debug.Module{Path: "github.com/coffer-backup/coffer", Version: mainVersion},
		Deps: []*debug.Module{
			{Path: AgeModule, Version: "v1.3.1"},
			{Path: "filippo.io/edwards25519", Version: "v1.2.0"},
			{Path: AWSSDKModule, Version: "v1.47.7"},
			{Path: "github.com/aws/aws-sdk-go-v2/config", Version: "v1.33.15"},
			{Path: S3Module, Version: "v1.114.8"},
			{Path: ZstdModule, Version: "v1.20.3"},
		},
		Settings: append([]debug.BuildSetting{{Key: "-compiler", Value: "gc"}, {Key: "GOOS", Value: "linux"}}, vcs...),
	}
}

func vcs(modified string) []debug.BuildSetting {
	return []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: commit},
		{Key: "vcs.time", Value: "2026-12-02T17:32:03Z"},
		{Key: "vcs.modified", Value: modified},
	}
}

func TestFromBuildInfo(t *testing.T) {
	libs := Info{GoVersion: "go1.27.3", Age: "v1.3.1", Zstd: "v1.20.3", AWSSDK: "v1.47.7", S3: "v1.114.8"}
	stamped := func(version string, modified bool) Info {
		i := libs
		i.Version, i.Commit, i.Modified, i.CommitTime = version, commit, modified, "2026-12-02T17:32:03Z"
		return i
	}
	unstamped := func(version string) Info {
		i := libs
		i.Version = version
		return i
	}
	pseudo := "v0.0.0-20261202173203-b4f7f6bfac57"
	cases := []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     Info
	}{
		{"devel module with a clean commit", build("(devel)", vcs("false")...), "", stamped("devel-b4f7f6bfac57", false)},
		{"devel module with a modified tree", build("(devel)", vcs("true")...), "", stamped("devel-b4f7f6bfac57+dirty", true)},
		{"tagged module", build("v1.2.3", vcs("false")...), "", stamped("v1.2.3", false)},
		{"pseudo-version, clean", build(pseudo, vcs("false")...), "", stamped(pseudo, false)},
		{"pseudo-version the go command marked dirty", build(pseudo+"+dirty", vcs("true")...), "", stamped(pseudo+"+dirty", true)},
		{"module version without the dirty mark", build("v1.2.3", vcs("true")...), "", stamped("v1.2.3+dirty", true)},
		{"ldflags override wins over the module version", build("v1.2.3", vcs("false")...), "v9.9.9", stamped("v9.9.9", false)},
		{"ldflags override is kept verbatim on a modified tree", build("(devel)", vcs("true")...), "v9.9.9", stamped("v9.9.9", true)},
		{"ldflags override without vcs information", build("(devel)"), "v9.9.9", unstamped("v9.9.9")},
		{"no vcs information", build("(devel)"), "", unstamped("dev")},
		{"no main module version (go test)", build(""), "", unstamped("dev")},
		{"no build information", nil, "", Info{Version: "dev", GoVersion: runtime.Version()}},
		{"no build information, ldflags override", nil, "v9.9.9", Info{Version: "v9.9.9", GoVersion: runtime.Version()}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := fromBuildInfo(c.bi, c.override); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// TestReplacedModule: a replace directive's version is the one linked in.
func TestReplacedModule(t *testing.T) {
	bi := build("(devel)")
	bi.Deps = []*debug.Module{{Path: AgeModule, Version: "v1.3.1", Replace: &debug.Module{Path: "example.com/age-fork", Version: "v1.3.1-fix"}}}
	if got := fromBuildInfo(bi, "").Age; got != "v1.3.1-fix" {
		t.Errorf("age version %q; want the replacement's v1.3.1-fix", got)
	}
}

func TestShortCommit(t *testing.T) {
	for commit, want := range map[string]string{commit: "b4f7f6bfac57", "abc": "abc", "": ""} {
		if got := (Info{Commit: commit}).ShortCommit(); got != want {
			t.Errorf("ShortCommit of %q = %q; want %q", commit, got, want)
		}
	}
}

// TestJSONFieldNames pins the documented field names of `coffer version
// --json`: scripts read them.
func TestJSONFieldNames(t *testing.T) {
	data, err := json.Marshal(Info{})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	var got []string
	for k := range fields {
		got = append(got, k)
	}
	slices.Sort(got)
	want := []string{"age", "aws_sdk", "commit", "commit_time", "go_version", "modified", "s3", "version", "zstd"}
	if !slices.Equal(got, want) {
		t.Errorf("JSON fields %v; want %v", got, want)
	}
}

// TestRead: the running test binary has build information (no vcs
// stamp under go test) and links the libraries Info reports.
func TestRead(t *testing.T) {
	i := Read()
	if i.Version == "" || i.GoVersion == "" {
		t.Errorf("Read() = %+v; want a version and a Go version", i)
	}
	if version == "" && i.Version != Unknown && i.Commit == "" {
		t.Errorf("version %q without a commit or an override", i.Version)
	}
}
