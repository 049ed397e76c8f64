package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// rows writes n bytes of CSV rows shaped like a school's database dump:
// an id, a timestamp, an account, an amount, a kind, a note of words and a
// JSON attribute column. The generator is seeded, so every run writes the
// same bytes.
func rows(w io.Writer, n int64) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []string{"lesson", "invoice", "refund", "login", "export", "enrolment"}
	words := []string{"pupil", "violin", "piano", "term", "grade", "hub", "teacher", "room", "exam", "fee", "band", "choir", "lesson", "paid", "due"}
	start := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var written int64
	for id := int64(1); written < n; id++ {
		note := words[r.IntN(len(words))] + " " + words[r.IntN(len(words))] + " " + words[r.IntN(len(words))]
		line := fmt.Sprintf("%d,%s,%d,%d.%02d,%s,%q,{\"ip\":\"10.%d.%d.1\",\"ok\":%t,\"tag\":%d}\n",
			id, start.Add(time.Duration(id)*7*time.Second).Format(time.RFC3339), r.IntN(50000), r.IntN(10000), r.IntN(100),
			kinds[r.IntN(len(kinds))], note, r.IntN(255), r.IntN(255), r.IntN(3) == 0, r.IntN(7))
		if rest := n - written; int64(len(line)) > rest {
			line = line[:rest]
		}
		k, err := bw.WriteString(line)
		written += int64(k)
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}
