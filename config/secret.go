package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted is what every printed or encoded non-empty Secret shows.
const redacted = "[redacted]"

// A Secret holds a credential: a password, an S3 secret key, a session
// token, an environment value for an exec source.
//
// Every way of printing or encoding a Secret shows "[redacted]", or ""
// when it is empty: fmt with any verb (%v, %+v, %#v, %s, %q, %x...),
// String, GoString, JSON, YAML and other text encoders, and log/slog.
// zap prints it through String. Only Reveal returns the value; call it
// where the value leaves the process (an SDK credential, a child's
// environment) and nowhere else.
//
// The value is held behind a pointer, so even printers that bypass methods
// (fmt on an unexported struct field, for example) show an address, not
// the secret. The zero Secret is empty. Secrets are not comparable with ==
// (two equal values may compare unequal); compare Reveal results.
type Secret struct {
	v *string
}

// NewSecret returns a Secret holding s.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{v: &s}
}

// Reveal returns the secret value in plain text.
func (s Secret) Reveal() string {
	if s.v == nil {
		return ""
	}
	return *s.v
}

// IsZero reports whether the secret is empty. It also makes encoding/json's
// omitzero option leave empty secrets out.
func (s Secret) IsZero() bool { return s.v == nil || *s.v == "" }

// String returns "[redacted]", or "" when the secret is empty.
func (s Secret) String() string {
	if s.IsZero() {
		return ""
	}
	return redacted
}

// GoString returns the same as String, so %#v never shows the value.
func (s Secret) GoString() string { return s.String() }

// Format implements fmt.Formatter: every verb prints String's result
// (%q quotes it).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(s.String()))
		return
	}
	io.WriteString(f, s.String())
}

// MarshalJSON encodes the secret as the JSON string "[redacted]", or ""
// when it is empty.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText returns "[redacted]", or nothing when the secret is empty, so
// YAML and other text encoders never see the value either.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer: the secret logs as "[redacted]".
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
