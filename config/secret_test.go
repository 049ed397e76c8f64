package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSecretRedaction(t *testing.T) {
	const plain = "hunter2-very-secret"
	s := NewSecret(plain)
	type holder struct {
		Name     string
		Password Secret
	}
	type hidden struct{ pw Secret }
	h := holder{"db", s}
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	yamlOf := func(v any) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var slogBuf strings.Builder
	slog.New(slog.NewTextHandler(&slogBuf, nil)).Info("connect", "password", s)
	wrapped := fmt.Errorf("connect: %w", fmt.Errorf("password %v rejected", s))

	for _, tc := range []struct {
		name, got, want string
	}{
		{"String", s.String(), "[redacted]"},
		{"GoString", s.GoString(), "[redacted]"},
		{"%v", fmt.Sprintf("%v", s), "[redacted]"},
		{"%+v", fmt.Sprintf("%+v", s), "[redacted]"},
		{"%#v", fmt.Sprintf("%#v", s), "[redacted]"},
		{"%s", fmt.Sprintf("%s", s), "[redacted]"},
		{"%q", fmt.Sprintf("%q", s), `"[redacted]"`},
		{"%x", fmt.Sprintf("%x", s), "[redacted]"},
		{"%d", fmt.Sprintf("%d", s), "[redacted]"},
		{"pointer %v", fmt.Sprintf("%v", &s), "[redacted]"},
		{"struct %v", fmt.Sprintf("%v", h), "{db [redacted]}"},
		{"struct %+v", fmt.Sprintf("%+v", h), "{Name:db Password:[redacted]}"},
		{"struct %#v", fmt.Sprintf("%#v", h), `config.holder{Name:"db", Password:[redacted]}`},
		{"JSON", jsonOf(s), `"[redacted]"`},
		{"JSON struct", jsonOf(h), `{"Name":"db","Password":"[redacted]"}`},
		{"YAML struct", yamlOf(h), "name: db\npassword: '[redacted]'\n"},
		{"error chain", wrapped.Error(), "connect: password [redacted] rejected"},
		{"unwrapped", errors.Unwrap(wrapped).Error(), "password [redacted] rejected"},
		{"Reveal", s.Reveal(), plain},
		{"empty String", Secret{}.String(), ""},
		{"empty %v", fmt.Sprintf("%v", Secret{}), ""},
		{"empty JSON", jsonOf(Secret{}), `""`},
		{"empty Reveal", NewSecret("").Reveal(), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if got := slogBuf.String(); strings.Contains(got, plain) || !strings.Contains(got, "password=[redacted]") {
		t.Errorf("slog: %q", got)
	}
	// Even printers that bypass methods (fmt on an unexported field) must
	// not find the value.
	if got := fmt.Sprintf("%+v %#v", hidden{s}, hidden{s}); strings.Contains(got, plain) {
		t.Errorf("unexported field printed the secret: %s", got)
	}
	if !Secret.IsZero(Secret{}) || !NewSecret("").IsZero() || s.IsZero() {
		t.Error("IsZero wrong")
	}
	// omitzero leaves empty secrets out of Destination's JSON.
	if got := jsonOf(Destination{Name: "d", Type: "local", Path: "/x"}); strings.Contains(got, "secret") {
		t.Errorf("empty secret not omitted: %s", got)
	}
}
