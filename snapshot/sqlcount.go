package snapshot

import (
	"bytes"
	"io"

	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// sqlCounter passes a MySQL or MariaDB SQL dump through to w and counts,
// as it streams past, the rows each table receives: a CREATE TABLE
// statement registers a table with no rows, and every INSERT (or REPLACE)
// INTO a table adds the tuples of its VALUES list. It holds no more of the
// dump than a table name, so it works on dumps of any size, split across
// Write calls at any byte.
//
// It lexes SQL the way the mariadb client splits it into statements:
// '...' and "..." strings (backslash escapes, doubled quotes), `...`
// identifiers (doubled backticks), -- and # line comments, /* */ comments,
// and DELIMITER commands, so that an INSERT inside a procedure body is not
// taken for a statement of the dump. Executable comments (/*! ... */ and
// /*M! ... */) are lexed but their contents ignored: mariadb-dump puts view
// stand-ins, triggers, events and session settings there, never rows.
//
// Statements it cannot count exactly (INSERT ... SELECT, INSERT ... SET,
// ON DUPLICATE KEY UPDATE) clear Exact; mariadb-dump writes none of them.
type sqlCounter struct {
	w io.Writer

	st    lexState
	exec  bool   // inside an executable comment
	delim []byte // statement delimiter, ";" until a DELIMITER command
	dk    int    // bytes of a multi-byte delimiter matched so far

	// skip tells the fast path which bytes cannot change anything while
	// the parser waits for the end of a statement (skipRest) or is inside
	// a VALUES tuple (skipTuple).
	skipRest, skipTuple [256]bool

	word    []byte // current word or identifier, when the parser wants it
	collect bool   // word is being collected
	long    bool   // word outgrew maxWord

	ps    parseState
	kind  stmtKind
	name  string // table of the current statement
	depth int    // parenthesis depth inside a VALUES list or column list
	rows  int64  // tuples of the current statement

	tables map[string]int64
	exact  bool
}

// maxWord bounds a collected word or identifier: MySQL names are at most
// 64 characters (256 bytes of UTF-8, doubled backticks aside).
const maxWord = 1024

type lexState uint8

const (
	lxNormal     lexState = iota
	lxWord                // inside a bare word being collected
	lxSQ                  // inside '...'
	lxSQEsc               // after a backslash inside '...'
	lxDQ                  // inside "..."
	lxDQEsc               // after a backslash inside "..."
	lxBQ                  // inside `...`
	lxBQEnd               // after a closing backtick (a second one doubles it)
	lxSlash               // after '/'
	lxSlashStar           // after '/*'
	lxSlashStarM          // after '/*M'
	lxBlock               // inside /* ... */
	lxBlockStar           // after '*' inside /* ... */
	lxExecStar            // after '*' inside an executable comment
	lxDash                // after '-'
	lxDashDash            // after '--'
	lxLine                // inside a -- or # comment
	lxDelim               // after the first dk bytes of a multi-byte delimiter
	lxDelimSpace          // after the word DELIMITER, before its argument
	lxDelimArg            // reading a DELIMITER command's argument
)

type parseState uint8

const (
	psStart     parseState = iota // before a statement's first token
	psRest                        // nothing more to learn before the delimiter
	psCreate                      // after CREATE
	psInsert                      // after INSERT or REPLACE
	psTableName                   // expecting a table name
	psAfterName                   // after a table name
	psColumns                     // inside INSERT's column list
	psAfterCols                   // after INSERT's column list
	psValues                      // inside the VALUES list
)

type stmtKind uint8

const (
	stmtOther stmtKind = iota
	stmtCreate
	stmtInsert
)

// newSQLCounter returns a counter passing writes through to w.
func newSQLCounter(w io.Writer) *sqlCounter {
	c := &sqlCounter{w: w, tables: make(map[string]int64), exact: true}
	c.setDelimiter([]byte(";"))
	return c
}

// Write passes p to the underlying writer, then counts what it holds.
func (c *sqlCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.scan(p[:n])
	return n, err
}

// Tables returns the counts so far: every table the dump created or
// inserted into, sorted by name.
func (c *sqlCounter) Tables() *dumpinfo.Tables {
	counts := make([]dumpinfo.TableRows, 0, len(c.tables))
	for name, n := range c.tables {
		counts = append(counts, dumpinfo.TableRows{Name: name, Rows: n})
	}
	t := newTables(MethodDumpStream, counts)
	t.Exact = c.exact
	return t
}

func (c *sqlCounter) setDelimiter(d []byte) {
	c.delim = append(c.delim[:0], d...)
	for i := range c.skipRest {
		b := byte(i)
		special := b == '\'' || b == '"' || b == '`' || b == '/' || b == '-' || b == '#' || b == '*' || b == c.delim[0]
		c.skipRest[i] = !special
		c.skipTuple[i] = !special && b != '(' && b != ')'
	}
}

// scan runs the lexer over p. Long runs that cannot matter (string
// contents, comment text, the values inside a tuple) are skipped in bulk.
func (c *sqlCounter) scan(p []byte) {
	i := 0
	for i < len(p) {
		switch c.st {
		case lxNormal:
			var skip *[256]bool
			switch {
			case c.ps == psRest:
				skip = &c.skipRest
			case c.ps == psValues && c.depth > 0:
				skip = &c.skipTuple
			}
			if skip != nil {
				for i < len(p) && skip[p[i]] {
					i++
				}
				if i == len(p) {
					return
				}
			}
			c.normal(p[i], true)
			i++
		case lxSQ, lxDQ:
			q := byte('\'')
			if c.st == lxDQ {
				q = '"'
			}
			var closed, escaped bool
			i, closed, escaped = skipQuoted(p, i, q)
			switch {
			case closed:
				c.st = lxNormal
			case escaped:
				c.st++ // lxSQ -> lxSQEsc, lxDQ -> lxDQEsc
			}
		case lxBQ:
			j := bytes.IndexByte(p[i:], '`')
			end := len(p)
			if j >= 0 {
				end = i + j
			}
			if c.collect {
				c.addWord(p[i:end])
			}
			if j < 0 {
				return
			}
			i = end + 1
			c.st = lxBQEnd
		case lxLine:
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return
			}
			i += j + 1
			c.st = lxNormal
		case lxBlock:
			j := bytes.IndexByte(p[i:], '*')
			if j < 0 {
				return
			}
			i += j + 1
			c.st = lxBlockStar
		default:
			c.step(p[i])
			i++
		}
	}
}

// skipQuoted skips the inside of a quoted string from p[i] on, up to and
// including the closing quote q. A backslash escapes the byte after it; a
// doubled quote needs no care, it closes and reopens the string. It says
// whether the string closed, or whether p ended right after a backslash.
func skipQuoted(p []byte, i int, q byte) (next int, closed, escaped bool) {
	for {
		end := len(p)
		if j := bytes.IndexByte(p[i:], q); j >= 0 {
			end = i + j
		}
		for {
			k := bytes.IndexByte(p[i:end], '\\')
			if k < 0 {
				break
			}
			i += k + 2 // the backslash and the byte it escapes
			if i > end {
				break
			}
		}
		switch {
		case i <= end && end == len(p):
			return len(p), false, false
		case i <= end:
			return end + 1, true, false
		case end == len(p): // a backslash was p's last byte
			return len(p), false, true
		}
		// The quote at end was escaped: look for the next one.
	}
}

// step advances the lexer by one byte in any state.
func (c *sqlCounter) step(b byte) {
	switch c.st {
	case lxNormal:
		c.normal(b, true)
	case lxWord:
		if isWordByte(b) && b != c.delim[0] { // DELIMITER $$ ends a word too
			c.addWord([]byte{b})
			return
		}
		c.st = lxNormal
		c.collect = false
		c.onWord()
		c.step(b)
	case lxSQ, lxDQ:
		q := byte('\'')
		if c.st == lxDQ {
			q = '"'
		}
		switch b {
		case q:
			c.st = lxNormal
		case '\\':
			c.st++
		}
	case lxSQEsc, lxDQEsc:
		c.st--
	case lxBQ:
		if b == '`' {
			c.st = lxBQEnd
		} else if c.collect {
			c.addWord([]byte{b})
		}
	case lxBQEnd:
		if b == '`' { // doubled: one backtick of the name
			if c.collect {
				c.addWord([]byte{b})
			}
			c.st = lxBQ
			return
		}
		c.st = lxNormal
		if c.collect {
			c.collect = false
			c.onName()
		}
		c.step(b)
	case lxSlash:
		if b == '*' {
			c.st = lxSlashStar
			return
		}
		c.st = lxNormal
		c.onPunct('/')
		c.step(b)
	case lxSlashStar:
		switch {
		case b == '!' && !c.exec:
			c.exec, c.st = true, lxNormal
		case b == 'M' && !c.exec:
			c.st = lxSlashStarM
		default:
			c.st = lxBlock
			c.step(b)
		}
	case lxSlashStarM:
		if b == '!' {
			c.exec, c.st = true, lxNormal
			return
		}
		c.st = lxBlock
		c.step(b)
	case lxBlock:
		if b == '*' {
			c.st = lxBlockStar
		}
	case lxBlockStar:
		switch b {
		case '/':
			c.st = lxNormal
		case '*':
		default:
			c.st = lxBlock
		}
	case lxExecStar:
		c.st = lxNormal
		if b == '/' {
			c.exec = false
			return
		}
		c.onPunct('*')
		c.step(b)
	case lxDash:
		if b == '-' {
			c.st = lxDashDash
			return
		}
		c.st = lxNormal
		c.onPunct('-')
		c.step(b)
	case lxDashDash:
		if b <= ' ' { // "-- " and a control character start a comment
			c.st = lxLine
			if b == '\n' {
				c.st = lxNormal
			}
			return
		}
		c.st = lxNormal
		c.onPunct('-')
		c.onPunct('-')
		c.step(b)
	case lxLine:
		if b == '\n' {
			c.st = lxNormal
		}
	case lxDelim:
		if b == c.delim[c.dk] {
			c.dk++
			if c.dk == len(c.delim) {
				c.st = lxNormal
				c.endStatement()
			}
			return
		}
		// Not the delimiter after all: its first byte is an ordinary
		// one, and the rest is lexed again from there.
		matched := append([]byte(nil), c.delim[:c.dk]...)
		c.st = lxNormal
		c.normal(matched[0], false)
		for _, m := range matched[1:] {
			c.step(m)
		}
		c.step(b)
	case lxDelimSpace:
		switch b {
		case ' ', '\t':
		case '\n', '\r':
			c.st = lxNormal // no argument: the delimiter stays
			c.ps = psStart
		default:
			c.st = lxDelimArg
			c.word = append(c.word[:0], b)
		}
	case lxDelimArg:
		switch b {
		case ' ', '\t', '\n', '\r':
			if len(c.word) > 0 && len(c.word) <= 16 {
				c.setDelimiter(c.word)
			}
			c.word = c.word[:0]
			c.st = lxLine // the rest of the command's line
			if b == '\n' {
				c.st = lxNormal
			}
			c.ps = psStart
		default:
			c.word = append(c.word, b)
		}
	}
}

// normal handles one byte outside strings and comments; allowDelim is false
// when b is the first byte of a delimiter that turned out not to be one.
func (c *sqlCounter) normal(b byte, allowDelim bool) {
	if allowDelim && b == c.delim[0] {
		if len(c.delim) == 1 {
			c.endStatement()
			return
		}
		c.st, c.dk = lxDelim, 1
		return
	}
	switch {
	case b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v':
	case isWordByte(b):
		if c.wantsWords() {
			c.st, c.collect, c.long = lxWord, true, false
			c.word = append(c.word[:0], b)
		}
	case b == '\'':
		c.onPunct(b)
		c.st = lxSQ
	case b == '"':
		c.onPunct(b)
		c.st = lxDQ
	case b == '`':
		c.st = lxBQ
		if c.wantsWords() {
			c.collect, c.long = true, false
			c.word = c.word[:0]
		}
	case b == '/':
		c.st = lxSlash
	case b == '-':
		c.st = lxDash
	case b == '#':
		c.st = lxLine
	case b == '*' && c.exec:
		c.st = lxExecStar
	default:
		c.onPunct(b)
	}
}

func isWordByte(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '$' || b >= 0x80
}

func (c *sqlCounter) addWord(p []byte) {
	if len(c.word)+len(p) > maxWord {
		c.long = true
		return
	}
	c.word = append(c.word, p...)
}

// wantsWords reports whether the parser would act on a word or name now.
func (c *sqlCounter) wantsWords() bool {
	if c.exec {
		return false
	}
	switch c.ps {
	case psRest, psColumns:
		return false
	case psValues:
		return c.depth == 0
	}
	return true
}

// keyword reports whether the collected word is kw (upper case ASCII),
// ignoring case.
func (c *sqlCounter) keyword(kw string) bool {
	if len(c.word) != len(kw) || c.long {
		return false
	}
	for i, b := range c.word {
		if b >= 'a' && b <= 'z' {
			b -= 'a' - 'A'
		}
		if b != kw[i] {
			return false
		}
	}
	return true
}

// onWord takes a bare word: a keyword, or a table name.
func (c *sqlCounter) onWord() {
	if c.exec {
		return
	}
	switch c.ps {
	case psStart:
		switch {
		case c.keyword("CREATE"):
			c.ps, c.kind = psCreate, stmtCreate
		case c.keyword("INSERT"), c.keyword("REPLACE"):
			c.ps, c.kind = psInsert, stmtInsert
		case c.keyword("DELIMITER"):
			c.st = lxDelimSpace
		default:
			c.ps = psRest
		}
	case psCreate:
		switch {
		case c.keyword("OR"), c.keyword("REPLACE"):
		case c.keyword("TABLE"):
			c.ps = psTableName
		default: // a view, routine, trigger, temporary table, ...
			c.ps, c.kind = psRest, stmtOther
		}
	case psInsert:
		switch {
		case c.keyword("LOW_PRIORITY"), c.keyword("DELAYED"), c.keyword("HIGH_PRIORITY"), c.keyword("IGNORE"):
		case c.keyword("INTO"):
			c.ps = psTableName
		default: // INTO is optional
			c.onName()
		}
	case psTableName:
		if c.kind == stmtCreate && (c.keyword("IF") || c.keyword("NOT") || c.keyword("EXISTS")) {
			return
		}
		c.onName()
	case psAfterName:
		switch {
		case c.kind != stmtInsert:
			c.ps = psRest
		case c.keyword("VALUES"), c.keyword("VALUE"):
			c.ps = psValues
		case c.keyword("PARTITION"): // a partition list follows, then columns
		default: // SELECT, SET, ...: rows this counter cannot see
			c.inexact()
		}
	case psAfterCols:
		if c.keyword("VALUES") || c.keyword("VALUE") {
			c.ps = psValues
			return
		}
		c.inexact()
	case psValues: // at depth 0: ON DUPLICATE KEY UPDATE, AS alias, ...
		c.inexact()
	}
}

// onName takes a table name: a bare word or a `quoted` identifier.
func (c *sqlCounter) onName() {
	if c.exec {
		return
	}
	switch c.ps {
	case psInsert, psTableName:
		if c.long || len(c.word) == 0 {
			c.name = ""
			c.abandon()
			return
		}
		c.name = string(c.word)
		c.ps = psAfterName
	case psStart:
		c.ps = psRest
	default:
		c.abandon()
	}
}

// onPunct takes any other token: punctuation or the start of a string.
func (c *sqlCounter) onPunct(b byte) {
	if c.exec {
		return
	}
	switch c.ps {
	case psRest:
	case psStart, psCreate:
		c.ps = psRest
	case psAfterName:
		switch {
		case b == '.': // the name was a database name
			c.ps = psTableName
		case b == '(' && c.kind == stmtInsert:
			c.ps, c.depth = psColumns, 1
		default:
			c.abandon()
		}
	case psColumns:
		switch b {
		case '(':
			c.depth++
		case ')':
			if c.depth--; c.depth == 0 {
				c.ps = psAfterCols
			}
		}
	case psValues:
		switch {
		case b == '(':
			if c.depth == 0 {
				c.rows++
			}
			c.depth++
		case b == ')':
			if c.depth > 0 {
				c.depth--
			}
		case c.depth == 0 && b != ',':
			c.inexact()
		}
	default:
		c.abandon()
	}
}

// abandon stops reading the current statement: a CREATE TABLE whose name
// is known still registers its table; an INSERT whose rows cannot be
// counted makes the counts inexact.
func (c *sqlCounter) abandon() {
	if c.kind == stmtInsert {
		c.inexact()
		return
	}
	c.ps = psRest
}

func (c *sqlCounter) inexact() {
	c.exact = false
	c.ps = psRest
}

// endStatement records the statement the delimiter ended.
func (c *sqlCounter) endStatement() {
	switch {
	case c.kind == stmtCreate && c.name != "":
		c.tables[c.name] += 0
	case c.kind == stmtInsert && c.name != "":
		c.tables[c.name] += c.rows
	case c.kind == stmtInsert:
		c.exact = false
	}
	c.ps, c.kind, c.name, c.depth, c.rows = psStart, stmtOther, "", 0, 0
}
