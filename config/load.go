package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxConfigSize bounds the configuration file Load reads.
const maxConfigSize = 1 << 20

// Load reads, decodes, completes with defaults and validates the
// configuration file at path, and reads the secret files it names.
//
// Problems in the file come back together, each a *FieldError (see
// FieldErrors). Beyond what Parse checks, Load refuses a file that group or
// others may read when it holds a secret written inline (not a ${VAR}
// reference or a *_file). An error reading the file itself is returned
// as the file system reported it.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s: is a directory, not a configuration file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d MiB; is this the right file?", path, maxConfigSize>>20)
	}
	perm := fi.Mode().Perm()
	return parse(path, data, &perm)
}

// Parse decodes, completes with defaults and validates a configuration held
// in data. name is used in error messages and as the base for relative
// *_file paths (its directory); nothing is read from name itself. ${VAR}
// references are expanded from the process environment.
//
// Parse returns a complete, valid *Config or, when anything is wrong, nil
// and an error joining one *FieldError per problem found.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, nil)
}

// parse is Parse, with the file mode of the file data came from when there
// is one.
func parse(name string, data []byte, perm *fs.FileMode) (*Config, error) {
	p := &parser{
		file:      name,
		dir:       filepath.Dir(name),
		lookupEnv: os.LookupEnv,
		pos:       map[string]int{},
		bad:       map[string]bool{},
		merged:    map[*yaml.Node][]pair{},
	}
	// The tree is walked by hand (see parser), so KnownFields has nothing
	// to police here; unknown keys are refused by parser.object. It is set
	// so that decoding stays strict if a struct is ever decoded directly.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, joinErrors([]*FieldError{{File: name, Msg: "the file is empty"}})
		}
		return nil, joinErrors([]*FieldError{syntaxError(name, err)})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, joinErrors([]*FieldError{syntaxError(name, err)})
		}
		return nil, joinErrors([]*FieldError{{File: name, Line: extra.Line, Msg: "a second YAML document (after ---); keep the whole configuration in one"}})
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	c := p.config(root)
	applyDefaults(c, p.has)
	p.validate(c)
	if perm != nil {
		p.checkFileMode(*perm)
	}
	if err := joinErrors(p.errs); err != nil {
		return nil, err
	}
	return c, nil
}

// yamlLineRE finds the line in yaml's syntax errors.
var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlParserProblems are the messages of yaml's parser (as opposed to its
// scanner). go.yaml.in/yaml/v3 reports their line 0-based, one too low.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %YAML directive",
	"found duplicate %TAG directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxError turns a yaml syntax error into a FieldError with its line,
// correcting yaml's line numbers: parser errors count from 0, and any
// syntax error on the first line comes without a line.
func syntaxError(name string, err error) *FieldError {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &FieldError{File: name, Msg: "YAML: " + err.Error()}
	}
	line, _ := strconv.Atoi(m[1])
	msg := m[2]
	switch {
	case slices.Contains(yamlParserProblems, msg):
		line++
	case line == 0 && !strings.Contains(msg, "anchor") && !strings.Contains(msg, "alias") && !strings.HasPrefix(msg, "attempted"):
		line = 1 // a scanner error on the first line
	}
	return &FieldError{File: name, Line: line, Msg: "YAML syntax: " + msg}
}

// checkFileMode refuses inline secrets in a configuration file that group
// or others may read.
func (p *parser) checkFileMode(perm fs.FileMode) {
	if runtime.GOOS == "windows" || perm&0o077 == 0 {
		return
	}
	for _, path := range p.inline {
		alt := "a ${VAR} reference"
		if !strings.Contains(path, ".env.") && !strings.HasSuffix(path, "]") {
			alt += " or " + path[strings.LastIndex(path, ".")+1:] + "_file"
		}
		p.errorf(path, "secret written inline in a file readable by group or others (mode %04o); fix: chmod 600 %s, or use %s", perm, p.file, alt)
	}
}
