// Package buildinfo says which Coffer is running: its version, the commit
// it was built from, the Go that built it, and the versions of the
// libraries its backups depend on (age, zstd, the AWS SDK and its S3
// client). Everything is read from the build information the Go linker
// records in the binary (runtime/debug.ReadBuildInfo), so a plain
// `go build` from a git checkout is stamped without extra flags.
//
// The version is, in order of preference:
//
//  1. the release version set at link time (below), verbatim;
//  2. the main module's version as the go command records it: a tag
//     ("v1.2.3") or a pseudo-version naming the commit
//     ("v0.0.0-20261202173203-b4f7f6bfac57"), with "+dirty" when the
//     working tree had uncommitted changes;
//  3. "devel-" and the short commit (plus "+dirty"), when the go command
//     recorded a commit but no module version;
//  4. "dev", when the binary records neither: built outside a git
//     checkout, with -buildvcs=false (a GOFLAGS of -buildvcs=false in
//     `go env` does that; `make build` passes -buildvcs=auto to undo it),
//     or by `go run` or `go test`, which stamp no commit unless given
//     -buildvcs=true.
//
// A release sets its version at link time (`make build VERSION=v1.2.3`
// does this):
//
//	go build -ldflags "-X github.com/coffer-backup/coffer/internal/buildinfo.version=v1.2.3" ./cmd/coffer
//
// cmd/coffer reads it once and passes it down to what records it
// (manifests, drill reports, notifications); no other package reads it.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// version is the release version, set at link time with
// -ldflags "-X github.com/coffer-backup/coffer/internal/buildinfo.version=v1.2.3".
// Empty means "derive it from the build information".
var version string

// Module paths whose versions Info reports.
const (
	AgeModule    = "filippo.io/age"
	ZstdModule   = "github.com/klauspost/compress"
	AWSSDKModule = "github.com/aws/aws-sdk-go-v2"
	S3Module     = "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Unknown is the version when the binary records none.
const Unknown = "dev"

// Info describes a Coffer binary. Its JSON form is what `coffer version
// --json` prints; the field names are stable (later versions may add
// fields, never rename or remove one). A value the binary does not record
// is "" (false for Modified).
type Info struct {
	// Version is Coffer's version (see the package doc for its forms).
	Version string `json:"version"`
	// Commit is the full git commit the binary was built from.
	Commit string `json:"commit"`
	// Modified is true when the working tree had uncommitted changes.
	Modified bool `json:"modified"`
	// CommitTime is the commit's time, RFC 3339 in UTC.
	CommitTime string `json:"commit_time"`
	// GoVersion is the Go toolchain that built the binary ("go1.27.3").
	GoVersion string `json:"go_version"`
	// Age is the version of filippo.io/age (encryption).
	Age string `json:"age"`
	// Zstd is the version of github.com/klauspost/compress (zstd).
	Zstd string `json:"zstd"`
	// AWSSDK is the version of github.com/aws/aws-sdk-go-v2.
	AWSSDK string `json:"aws_sdk"`
	// S3 is the version of github.com/aws/aws-sdk-go-v2/service/s3.
	S3 string `json:"s3"`
}

// ShortCommit is the commit's first 12 hex digits (as in Go
// pseudo-versions), or "" when none is recorded.
func (i Info) ShortCommit() string { return short(i.Commit) }

// Read returns the running binary's Info. It is computed once.
var Read = sync.OnceValue(func() Info {
	bi, _ := debug.ReadBuildInfo()
	return fromBuildInfo(bi, version)
})

// fromBuildInfo computes Info from bi (nil when the binary records none)
// and the link-time version override ("" for none).
func fromBuildInfo(bi *debug.BuildInfo, override string) Info {
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	info := Info{GoVersion: bi.GoVersion}
	if info.GoVersion == "" {
		info.GoVersion = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Commit = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		case "vcs.time":
			info.CommitTime = s.Value
		}
	}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil { // the replacement is what was linked in
			v = d.Replace.Version
		}
		switch d.Path {
		case AgeModule:
			info.Age = v
		case ZstdModule:
			info.Zstd = v
		case AWSSDKModule:
			info.AWSSDK = v
		case S3Module:
			info.S3 = v
		}
	}
	dirty := ""
	if info.Modified {
		dirty = "+dirty"
	}
	switch mv := bi.Main.Version; {
	case override != "":
		info.Version = override
	case mv != "" && mv != "(devel)":
		info.Version = mv
		if !strings.HasSuffix(mv, dirty) {
			info.Version += dirty
		}
	case info.Commit != "":
		info.Version = "devel-" + short(info.Commit) + dirty
	default:
		info.Version = Unknown
	}
	return info
}

// short is a commit's first 12 characters.
func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}
