package fs

import (
	"errors"
	"fmt"
	"strings"
)

// tempPrefix starts the name of every temporary file Put and Create write.
const tempPrefix = ".coffer-tmp-"

// ValidateKey reports why key cannot name an object, or nil if it can.
// Keys are "/"-separated relative paths: non-empty, no leading or trailing
// "/", no empty, "." or ".." segments, no NUL or backslash, and no segment
// starting with ".coffer-tmp-" (reserved for temporary files).
func ValidateKey(key string) error {
	if p := keyProblem(key); p != "" {
		return fmt.Errorf("invalid key %q: %s", key, p)
	}
	return nil
}

// validatePrefix checks a List prefix: like a key, but it may be empty and
// may end with "/".
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	p := strings.TrimSuffix(prefix, "/")
	if p == "" {
		return errors.New(`invalid prefix "/"`)
	}
	if problem := keyProblem(p); problem != "" {
		return fmt.Errorf("invalid prefix %q: %s", prefix, problem)
	}
	return nil
}

func keyProblem(key string) string {
	if key == "" {
		return "empty"
	}
	if strings.ContainsAny(key, "\x00\\") {
		return "contains NUL or backslash"
	}
	if strings.HasPrefix(key, "/") {
		return "absolute (starts with /)"
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return "empty path segment (// or trailing /)"
		case seg == "." || seg == "..":
			return fmt.Sprintf("%q segment", seg)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Sprintf("segment prefix %q is reserved for temporary files", tempPrefix)
		}
	}
	return ""
}
