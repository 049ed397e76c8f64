package snapshot

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// trickyDump has what a mariadb-dump can hold, and a little more: quotes
// of every kind, escapes, parentheses and delimiters inside strings and
// names, view stand-ins, triggers and procedures whose bodies hold INSERT
// statements, and DELIMITER commands.
const trickyDump = "/*M!999999\\- enable the sandbox mode */ \n" +
	"-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB\n" +
	"--\n" +
	"/*!40101 SET NAMES utf8mb4 */;\n" +
	"/* a plain comment with 'a quote; and a (paren */\n" +
	"DROP TABLE IF EXISTS `a`;\n" +
	"CREATE TABLE `a` (\n" +
	"  `id` int NOT NULL,\n" +
	"  `s` text DEFAULT 'x'';(',\n" +
	"  PRIMARY KEY (`id`)\n" +
	") ENGINE=InnoDB /*!50100 PARTITION BY HASH (`id`) PARTITIONS 2 */;\n" +
	"INSERT INTO `a` VALUES (1,'it\\'s (a) \\\\ test'),(2,NULL),(3,'),(\\'),('),(4,'x''y)('),(5,\"dq ) ( \\\" ''\"),(6,_binary 'a\\0b\\\\'),(7,0xDEADBEEF),(8,-1.5e-3);\n" +
	"INSERT INTO `a` VALUES\n(9,'multi\nline; string -- not a comment # nor this /* nor this'),\n(10,'');\n" +
	"CREATE TABLE `we``ird;name (x)` (x int);\n" +
	"INSERT INTO `we``ird;name (x)` VALUES (1),(2);\n" +
	"CREATE TABLE IF NOT EXISTS `empty` (x int);\n" +
	"/*!50001 CREATE VIEW `v` AS SELECT 1 AS `id` */;\n" +
	"/*!50001 CREATE TABLE `standin` (\n  `id` tinyint NOT NULL\n) ENGINE=MyISAM */;\n" +
	"DELIMITER ;;\n" +
	"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t1 AFTER INSERT ON a FOR EACH ROW BEGIN\n" +
	"INSERT INTO b VALUES (NEW.id);\n" +
	"INSERT INTO `a` VALUES (2); SET @x = '*/';\n" +
	"END */;;\n" +
	"CREATE DEFINER=`root`@`%` PROCEDURE `p1`()\n" +
	"BEGIN\n" +
	"INSERT INTO `a` VALUES (7);\n" +
	"INSERT INTO `a` VALUES (8); # it's a comment\n" +
	"-- and so's this\n" +
	"END ;;\n" +
	"DELIMITER ;\n" +
	"INSERT INTO `a` (`id`, `s`) VALUES (11,'x'),(12,'y(');\n" +
	"REPLACE INTO `b` VALUES (1);\n" +
	"insert into b values (2), (3);\n" +
	"INSERT INTO `ünï` VALUES ('ü');\n" +
	"CREATE TABLE `ünï` (c text);\n" +
	"DELIMITER $$\n" +
	"CREATE TABLE dollar (x int)$$\n" +
	"INSERT INTO dollar VALUES (1),('$'),('$$')$$\n" +
	"INSERT INTO dollar VALUES (4)$$\n" +
	"DELIMITER ;\n" +
	"INSERT INTO `db`.`qualified` VALUES (1);\n" +
	"UNLOCK TABLES;\n" +
	"-- Dump completed\n"

var trickyWant = map[string]int64{
	"a":               12,
	"we`ird;name (x)": 2,
	"empty":           0,
	"b":               3,
	"ünï":             1,
	"dollar":          4,
	"qualified":       1,
}

// countIn feeds data to a counter in the given pieces and returns what it
// counted, checking that every byte reached the writer unchanged.
func countIn(t testing.TB, pieces ...[]byte) *dumpinfo.Tables {
	t.Helper()
	var out bytes.Buffer
	c := newSQLCounter(&out)
	var want []byte
	for _, p := range pieces {
		n, err := c.Write(p)
		if err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v", n, err)
		}
		want = append(want, p...)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("the counter changed the bytes passing through")
	}
	return c.Tables()
}

func asMap(tables *dumpinfo.Tables) map[string]int64 {
	m := make(map[string]int64)
	for _, tr := range tables.Counts {
		m[tr.Name] = tr.Rows
	}
	return m
}

func checkCounts(t *testing.T, how string, got *dumpinfo.Tables, want map[string]int64, exact bool) {
	t.Helper()
	if !maps.Equal(asMap(got), want) || got.Exact != exact || got.Method != MethodDumpStream {
		t.Fatalf("%s: got %+v (exact %v), want %v (exact %v)", how, got.Counts, got.Exact, want, exact)
	}
	if !slices.IsSortedFunc(got.Counts, func(a, b dumpinfo.TableRows) int { return strings.Compare(a.Name, b.Name) }) {
		t.Fatalf("%s: counts not sorted by name: %+v", how, got.Counts)
	}
}

// The same counts whether the dump arrives whole, in two pieces split at
// any byte, or one byte at a time.
func TestSQLCounterTricky(t *testing.T) {
	data := []byte(trickyDump)
	checkCounts(t, "whole", countIn(t, data), trickyWant, true)
	for k := 1; k < len(data); k++ {
		checkCounts(t, fmt.Sprintf("split at %d (%q|%q)", k, data[max(0, k-8):k], data[k:min(len(data), k+8)]),
			countIn(t, data[:k], data[k:]), trickyWant, true)
	}
	bytewise := make([][]byte, len(data))
	for i := range data {
		bytewise[i] = data[i : i+1]
	}
	checkCounts(t, "byte by byte", countIn(t, bytewise...), trickyWant, true)
}

// Statements whose rows the stream cannot see make the counts inexact
// rather than wrong without a word.
func TestSQLCounterInexact(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want map[string]int64
	}{
		{"CREATE TABLE `t` (x int);\nINSERT INTO `t` SELECT * FROM u;\n", map[string]int64{"t": 0}},
		{"INSERT INTO `t` VALUES (1),(2) ON DUPLICATE KEY UPDATE x = VALUES(x);\n", map[string]int64{"t": 2}},
		{"INSERT INTO t SET x = 1;\n", map[string]int64{"t": 0}},
		{"INSERT INTO (x) VALUES (1);\n", map[string]int64{}},
	} {
		checkCounts(t, tc.sql, countIn(t, []byte(tc.sql)), tc.want, false)
	}
	checkCounts(t, "no tables", countIn(t, []byte("-- nothing\n")), map[string]int64{}, true)
	if got := countIn(t).Counts; got == nil {
		t.Error("Counts of an empty dump is nil, want empty (it encodes as [])")
	}
}

// Random rows of hostile strings, cut into random pieces: every row is
// counted once.
func TestSQLCounterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"'", "''", `\'`, `\\`, `"`, "`", "(", ")", ",", ";", ";;", "--", "-- ", "#", "/*", "*/", "/*!", "\n", "x", "ü", "\\0", "$$", "DELIMITER"}
	str := func() string {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	// quote writes s as mariadb-dump would: backslash escapes.
	quote := func(s string) string {
		return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(s) + "'"
	}
	for round := range 50 {
		var dump strings.Builder
		want := map[string]int64{}
		for ti := range 1 + rng.IntN(4) {
			// No newline in names: mariadb-dump quotes them in -- comments.
			name := fmt.Sprintf("t%d`%s", ti, strings.NewReplacer("`", "", "\n", "").Replace(str()))
			qname := "`" + strings.ReplaceAll(name, "`", "``") + "`"
			fmt.Fprintf(&dump, "--\n-- Table structure for table %s\n--\n\nCREATE TABLE %s (\n  `k` text DEFAULT %s\n);\n", qname, qname, quote(str()))
			want[name] = 0
			for range rng.IntN(4) {
				n := 1 + rng.IntN(30)
				fmt.Fprintf(&dump, "INSERT INTO %s VALUES ", qname)
				for r := range n {
					if r > 0 {
						dump.WriteString(",\n")
					}
					fmt.Fprintf(&dump, "(%d,%s,0x%X,NULL,%s)", r, quote(str()), rng.Uint64(), quote(str()))
				}
				dump.WriteString(";\n")
				want[name] += int64(n)
			}
		}
		data := []byte(dump.String())
		var pieces [][]byte
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(40))
			pieces = append(pieces, rest[:n])
			rest = rest[n:]
		}
		checkCounts(t, fmt.Sprintf("round %d", round), countIn(t, pieces...), want, true)
	}
}

// FuzzSQLCounterSplit: whatever the input, splitting it anywhere changes
// nothing (the counter carries all of its state across writes).
func FuzzSQLCounterSplit(f *testing.F) {
	f.Add([]byte(trickyDump), 100, 7)
	f.Add([]byte("INSERT INTO `a``b` VALUES ('x\\'y'),(\"(\")"), 3, 19)
	f.Add([]byte("DELIMITER //\nINSERT INTO t VALUES (1)//\n/*!*/ -- x\n"), 12, 30)
	f.Fuzz(func(t *testing.T, data []byte, i, j int) {
		if len(data) == 0 {
			return
		}
		i, j = abs(i)%len(data), abs(j)%len(data)
		if i > j {
			i, j = j, i
		}
		whole := countIn(t, data)
		split := countIn(t, data[:i], data[i:j], data[j:])
		if !maps.Equal(asMap(whole), asMap(split)) || whole.Exact != split.Exact {
			t.Fatalf("split at %d and %d: %+v, whole: %+v", i, j, split, whole)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// BenchmarkSQLCounter measures the counter on dump-like SQL: extended
// INSERTs of rows mixing numbers, hex blobs, NULLs and escaped text.
func BenchmarkSQLCounter(b *testing.B) {
	var dump bytes.Buffer
	dump.WriteString("CREATE TABLE `orders` (`id` bigint, `note` text, `payload` blob);\n")
	for s := 0; dump.Len() < 64<<20; s++ {
		dump.WriteString("INSERT INTO `orders` VALUES ")
		for r := range 2000 {
			if r > 0 {
				dump.WriteString(",\n")
			}
			fmt.Fprintf(&dump, "(%d,'Customer O\\'Brien \\\"q\\\" %d, tab\\there\\nnewline 😀 \\\\ back',0x%032X00FF,NULL,%d.%02d,'2024-06-01 12:%02d:00','{\\\"sku\\\": \\\"SKU-%d\\\", \\\"qty\\\": %d}')",
				s*2000+r, r, uint64(r)*0x9E3779B97F4A7C15, r*7919%100000, r%100, r%60, r%997, r%13)
		}
		dump.WriteString(";\n")
	}
	data := dump.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		c := newSQLCounter(io.Discard)
		for p := data; len(p) > 0; {
			n := min(len(p), copyBuffer)
			c.Write(p[:n])
			p = p[n:]
		}
		if c.Tables().Counts[0].Rows == 0 {
			b.Fatal("no rows counted")
		}
	}
}
