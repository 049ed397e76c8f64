package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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

// TestSecretRedactedByEveryEncoder prints a Secret, alone and inside the
// shapes the config holds it in (struct fields, maps, slices), through
// every printer and encoder Coffer or a library might use: fmt, JSON,
// YAML, zap (JSON and console) and slog (text and JSON). None may show
// the value.
func TestSecretRedactedByEveryEncoder(t *testing.T) {
	const plain = "canary-7f3a9c-secret"
	s := NewSecret(plain)
	type field struct {
		User     string
		Password Secret
	}
	type nested struct {
		Source field
		Env    map[string]Secret
		Hooks  []Secret
		Ptr    *Secret
	}
	f := field{"app", s}
	n := nested{Source: f, Env: map[string]Secret{"PGPASSWORD": s}, Hooks: []Secret{s, s}, Ptr: &s}
	m := map[string]Secret{"token": s}
	type row struct{ name, got string }
	var rows []row
	add := func(name, got string) { rows = append(rows, row{name, got}) }

	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v", "%T %v"} {
		add("fmt "+verb, fmt.Sprintf(verb, s))
		add("fmt "+verb+" pointer", fmt.Sprintf(verb, &s))
		add("fmt "+verb+" struct", fmt.Sprintf(verb, f))
		add("fmt "+verb+" nested", fmt.Sprintf(verb, n))
		add("fmt "+verb+" map", fmt.Sprintf(verb, m))
	}
	add("fmt Sprint", fmt.Sprint(s, f, n, m))
	add("fmt Sprintln", fmt.Sprintln(s, f, n, m))
	add("error %w chain", fmt.Errorf("dial: %w", fmt.Errorf("auth %s (%v)", s, f)).Error())

	for name, v := range map[string]any{"value": s, "pointer": &s, "struct": f, "nested": n, "map": m, "slice": []Secret{s}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json %s: %v", name, err)
		}
		add("json "+name, string(b))
		if !strings.Contains(string(b), redacted) {
			t.Errorf("json %s: %s does not show %s", name, b, redacted)
		}
		b, err = json.MarshalIndent(v, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		add("json indent "+name, string(b))
		y, err := yaml.Marshal(v)
		if err != nil {
			t.Fatalf("yaml %s: %v", name, err)
		}
		add("yaml "+name, string(y))
		if !strings.Contains(string(y), redacted) {
			t.Errorf("yaml %s: %s does not show %s", name, y, redacted)
		}
	}

	for _, enc := range []struct {
		name string
		new  func(zapcore.EncoderConfig) zapcore.Encoder
	}{{"zap json", zapcore.NewJSONEncoder}, {"zap console", zapcore.NewConsoleEncoder}} {
		var buf bytes.Buffer
		core := zapcore.NewCore(enc.new(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
		log := zap.New(core)
		log.Info("connect",
			zap.Any("any", s), zap.Any("any_ptr", &s), zap.Stringer("stringer", s),
			zap.Any("struct", f), zap.Reflect("reflect", f), zap.Reflect("nested", n),
			zap.Any("map", m), zap.Any("slice", []Secret{s}),
			zap.Error(fmt.Errorf("auth %v failed", s)))
		log.With(zap.Any("with", s)).Named("child").Warn("again", zap.Reflect("ptr", &s))
		log.Sugar().Infow("sugared", "pw", s, "field", f)
		log.Sugar().Infof("formatted %v %+v", s, n)
		add(enc.name, buf.String())
		if got := strings.Count(buf.String(), redacted); got < 10 {
			t.Errorf("%s: %d redaction markers, want every field marked:\n%s", enc.name, got, buf.String())
		}
	}

	for _, h := range []struct {
		name string
		new  func(io.Writer) slog.Handler
	}{
		{"slog text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }},
		{"slog json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("connect", "pw", s, "ptr", &s, "struct", f, "nested", n, "map", m,
			slog.Any("any", s), slog.Group("g", "pw", s), "err", fmt.Errorf("auth %v", s))
		log.With("with", s).Info("again")
		add(h.name, buf.String())
		if !strings.Contains(buf.String(), redacted) {
			t.Errorf("%s: no %s in %s", h.name, redacted, buf.String())
		}
	}

	for _, r := range rows {
		if strings.Contains(r.got, plain) {
			t.Errorf("%s shows the secret: %s", r.name, r.got)
		}
	}
}
