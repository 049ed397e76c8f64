package safecsv

import (
	"strings"
	"testing"
)

func TestFormulasAreText(t *testing.T) {
	var b strings.Builder
	w := NewWriter(&b)
	if err := w.Write([]string{"=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tx", "plain", ""}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "\"'=HYPERLINK(\"\"http://x\"\")\",'+1,'-2,'@SUM(A1),'\tx,plain,\n"
	if b.String() != want {
		t.Errorf("got  %q\nwant %q", b.String(), want)
	}
}
