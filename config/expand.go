package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// errMalformedRef is returned by expand for a "${" that does not start a
// valid reference.
var errMalformedRef = errors.New("malformed ${...} reference (a name is letters, digits and _, not starting with a digit; write $${ for a literal ${)")

// unsetVarError is returned by expand for a reference to an unset variable.
type unsetVarError struct{ name string }

func (e *unsetVarError) Error() string {
	return fmt.Sprintf("environment variable %s is not set", e.name)
}

// expand replaces each ${NAME} in s with the variable's value, looked up
// with lookup, and "$${" with a literal "${". A "$" not followed by "{" is
// kept as is, so values such as "pa$word" need no escaping. It returns the
// number of references replaced. Errors never include s or any value.
func expand(s string, lookup func(string) (string, bool)) (string, int, error) {
	if !strings.Contains(s, "${") {
		return s, 0, nil
	}
	var b strings.Builder
	refs := 0
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), refs, nil
		}
		if i > 0 && s[i-1] == '$' {
			// "$${" is a literal "${".
			b.WriteString(s[:i-1] + "${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", 0, errMalformedRef
		}
		name := s[i+2 : i+end]
		if !isEnvName(name) {
			return "", 0, errMalformedRef
		}
		v, ok := lookup(name)
		if !ok {
			return "", 0, &unsetVarError{name}
		}
		b.WriteString(v)
		refs++
		s = s[i+end+1:]
	}
}

// isEnvName reports whether s is a portable environment variable name.
func isEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// maxSecretFile bounds what readSecretFile reads.
const maxSecretFile = 64 << 10

// readSecretFile reads a secret from name (relative names are taken from
// dir), removing trailing newlines. It refuses files that group or others
// may read (except on Windows, where mode bits mean little) and empty
// files. Errors name the file, never its content.
func readSecretFile(dir, name string) (string, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(dir, name)
	}
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %v", err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("secret file %s is a directory", name)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("secret file %s is readable by group or others (mode %04o); fix: chmod 600 %s", name, perm, name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read secret file: %v", err)
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("secret file %s is larger than %d KiB", name, maxSecretFile>>10)
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", name)
	}
	return s, nil
}
