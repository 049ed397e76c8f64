package keyfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateThenRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	secret := []byte("AGE-SECRET-KEY-1EXAMPLE\n")
	if err := Create(path, secret); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", st.Mode().Perm())
	}
	if err := Create(path, []byte("other")); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second Create: %v, want a refusal to overwrite", err)
	}
	got, err := Read(path, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(secret) {
		t.Fatalf("read %q, want the bytes written", got)
	}
}

func TestReadRefusesSharedAndLargeFiles(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(shared, []byte("AGE-SECRET-KEY-1SHARED"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Read(shared, 1024)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+shared) {
		t.Fatalf("group-readable file: %v, want a refusal naming the chmod", err)
	}
	if strings.Contains(err.Error(), "SHARED") {
		t.Fatal("the error echoes the file's contents")
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(big, 1024); err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Fatalf("oversized file: %v, want a size refusal", err)
	}
}
