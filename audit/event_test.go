package audit

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOutcomeWords: the outcomes are the words already written in audit
// trails on disk and in buckets; the compliance report matches them in
// trails years old, so none may change, and an Event still encodes its
// outcome as a plain JSON string.
func TestOutcomeWords(t *testing.T) {
	for o, want := range map[Outcome]string{
		OutcomeOK: "ok", OutcomePartial: "partial", OutcomeFailed: "failed",
		OutcomeDeleted: "deleted", OutcomeLocked: "locked", OutcomeRemoved: "removed",
	} {
		if string(o) != want {
			t.Errorf("outcome %q, want %q", o, want)
		}
		line, err := json.Marshal(Event{Outcome: o})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(line), `"outcome":"`+want+`",`) {
			t.Errorf("event encodes as %s, want \"outcome\":%q", line, want)
		}
	}
}
