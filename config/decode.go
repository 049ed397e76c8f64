package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parser turns a YAML node tree into a Config, collecting every problem
// with the line and field path it belongs to. Decoding walks yaml.Node
// rather than decoding into structs so that each error can name its field
// path (yaml's own errors name only a line and a Go type).
type parser struct {
	file      string                      // name used in errors
	dir       string                      // base for relative *_file paths
	lookupEnv func(string) (string, bool) // expands ${VAR}
	errs      []*FieldError               // every problem found
	pos       map[string]int              // field path -> line of its key, for keys the file sets
	bad       map[string]bool             // field paths whose value could not be decoded
	inline    []string                    // field paths of secrets written inline
	merged    map[*yaml.Node][]pair       // mappings already resolved for merge keys
}

// add records a problem at path. Problems under a path that already failed
// to decode are dropped, so one mistake gives one message.
func (p *parser) add(path string, line int, format string, args ...any) {
	if p.isBad(path) {
		return
	}
	p.errs = append(p.errs, &FieldError{File: p.file, Line: line, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// errorf records a problem at path, on the line of path or its nearest
// ancestor set in the file.
func (p *parser) errorf(path string, format string, args ...any) {
	p.add(path, p.line(path), format, args...)
}

// badf records a problem decoding path and marks it bad.
func (p *parser) badf(path string, format string, args ...any) {
	p.errorf(path, format, args...)
	p.bad[path] = true
}

// has reports whether the file sets path (to something other than null).
func (p *parser) has(path string) bool {
	_, ok := p.pos[path]
	return ok
}

// line returns the line of path's key, or of its nearest ancestor's.
func (p *parser) line(path string) int {
	for path != "" {
		if l, ok := p.pos[path]; ok {
			return l
		}
		path = parentPath(path)
	}
	return 0
}

// isBad reports whether path or one of its ancestors failed to decode.
func (p *parser) isBad(path string) bool {
	for path != "" {
		if p.bad[path] {
			return true
		}
		path = parentPath(path)
	}
	return false
}

// parentPath strips the last ".key" or "[i]" from path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// join appends key to path.
func join(path, key string) string {
	if path == "" || strings.HasPrefix(key, "[") {
		return path + key
	}
	return path + "." + key
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or null ("key:" with no value, "~").
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// describe names what kind of value n is, without showing the value.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	}
	switch n.Tag {
	case "!!str":
		return "a string"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!null":
		return "nothing"
	}
	return "a " + strings.TrimPrefix(n.Tag, "!!")
}

// pair is one key and value of a mapping.
type pair struct{ key, val *yaml.Node }

// mapping returns the pairs of the mapping n, in file order, with merge
// keys ("<<: *anchor") applied: keys written in the mapping win over merged
// ones, and earlier merged mappings over later ones. A null n is an empty
// mapping. Duplicate keys are reported.
func (p *parser) mapping(n *yaml.Node, path, want string) ([]pair, bool) {
	n = resolve(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.badf(path, "want %s, got %s", want, describe(n))
		return nil, false
	}
	var out, merged []pair
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			merged = append(merged, p.merge(v, path, want)...)
			continue
		}
		k = resolve(k)
		if k.Kind != yaml.ScalarNode {
			p.add(path, k.Line, "keys must be plain names, not %s", describe(k))
			continue
		}
		if l, dup := first[k.Value]; dup {
			p.add(join(path, k.Value), k.Line, "duplicate key (first at line %d)", l)
			continue
		}
		first[k.Value] = k.Line
		out = append(out, pair{k, v})
	}
	for _, m := range merged {
		if _, ok := first[m.key.Value]; !ok {
			first[m.key.Value] = m.key.Line
			out = append(out, m)
		}
	}
	return out, true
}

// merge returns the pairs a merge key's value brings: one mapping or a
// list of them.
// Each merged mapping is resolved once per parse, so anchors merging
// anchors cannot blow up exponentially.
func (p *parser) merge(n *yaml.Node, path, want string) []pair {
	n = resolve(n)
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	var out []pair
	for _, item := range items {
		item = resolve(item)
		pairs, ok := p.merged[item]
		if !ok {
			pairs, _ = p.mapping(item, path, want)
			p.merged[item] = pairs
		}
		out = append(out, pairs...)
	}
	return out
}

// field is one key a mapping may hold and how to decode its value.
type field struct {
	name   string
	decode func(val *yaml.Node, path string)
}

// object decodes the mapping n with fields. Unknown keys are errors (the
// point of KnownFields, with a suggestion), except top-level keys starting
// with "x-", which are ignored so they can hold YAML anchors. Null values
// count as absent.
func (p *parser) object(n *yaml.Node, path, want string, fields []field) {
	pairs, ok := p.mapping(n, path, want)
	if !ok {
		return
	}
	for _, kv := range pairs {
		fp := join(path, kv.key.Value)
		var f *field
		for i := range fields {
			if fields[i].name == kv.key.Value {
				f = &fields[i]
			}
		}
		if f == nil && path == "" && strings.HasPrefix(kv.key.Value, "x-") {
			continue // extension keys hold YAML anchors for the rest of the file
		}
		if f == nil {
			p.add(fp, kv.key.Line, "unknown key%s", suggest(kv.key.Value, fields))
			continue
		}
		if isNull(kv.val) {
			continue
		}
		p.pos[fp] = kv.key.Line
		f.decode(kv.val, fp)
	}
}

// named decodes a mapping of names (destinations, jobs) with each, in file
// order.
func (p *parser) named(n *yaml.Node, path, want string, each func(name string, val *yaml.Node, path string)) {
	pairs, _ := p.mapping(n, path, want)
	for _, kv := range pairs {
		np := join(path, kv.key.Value)
		p.pos[np] = kv.key.Line
		each(kv.key.Value, kv.val, np)
	}
}

// suggest returns "; did you mean X?" for the known key closest to key, or
// the list of known keys when none is close.
func suggest(key string, fields []field) string {
	best, bestDist := "", 3
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
		if d := editDistance(strings.ToLower(strings.ReplaceAll(key, "-", "_")), f.name); d < bestDist && d < len(f.name)/2+1 {
			best, bestDist = f.name, d
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %s?", best)
	}
	return fmt.Sprintf(" (want one of: %s)", strings.Join(names, ", "))
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// text returns the scalar n with ${VAR} references expanded, and how many
// references it held.
func (p *parser) text(n *yaml.Node, path string) (string, int, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		p.badf(path, "want a string, got %s", describe(n))
		return "", 0, false
	}
	s, refs, err := expand(n.Value, p.lookupEnv)
	if err != nil {
		p.badf(path, "%v", err)
		return "", 0, false
	}
	return s, refs, true
}

// str decodes a string into dst.
func (p *parser) str(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		if s, _, ok := p.text(n, path); ok {
			*dst = s
		}
	}
}

// fileName decodes a file name into dst, made absolute against the
// configuration file's directory.
func (p *parser) fileName(dst *string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, _, ok := p.text(n, path)
		if !ok {
			return
		}
		if s != "" && !filepath.IsAbs(s) {
			if abs, err := filepath.Abs(filepath.Join(p.dir, s)); err == nil {
				s = abs
			}
		}
		*dst = s
	}
}

// typed returns the text of a scalar that must have tag (an int or a bool),
// also accepting a string holding a ${VAR} reference.
func (p *parser) typed(n *yaml.Node, path, tag, want string) (string, bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.Contains(n.Value, "${") {
		s, _, ok := p.text(n, path)
		return s, ok
	}
	if n.Kind != yaml.ScalarNode || n.Tag != tag {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			hint = fmt.Sprintf(" %q", n.Value)
		}
		p.badf(path, "want %s, got %s%s", want, describe(n), hint)
		return "", false
	}
	return n.Value, true
}

// integer decodes a whole number into dst.
func (p *parser) integer(dst *int) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := p.typed(n, path, "!!int", "a whole number")
		if !ok {
			return
		}
		v, err := strconv.ParseInt(s, 0, strconv.IntSize)
		if err != nil {
			p.badf(path, "want a whole number, got %q", s)
			return
		}
		*dst = int(v)
	}
}

// boolean decodes true or false into dst.
func (p *parser) boolean(dst *bool) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, ok := p.typed(n, path, "!!bool", "true or false")
		if !ok {
			return
		}
		v, err := strconv.ParseBool(strings.ToLower(s))
		if err != nil {
			p.badf(path, "want true or false, got %q", s)
			return
		}
		*dst = v
	}
}

// duration decodes a Duration ("28d", "8h") into dst.
func (p *parser) duration(dst *Duration) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, _, ok := p.text(n, path)
		if !ok {
			return
		}
		d, err := ParseDuration(s)
		if err != nil {
			p.badf(path, "%v", err)
			return
		}
		*dst = d
	}
}

// date decodes a Date ("2026-11-30", quoted or not) into dst.
func (p *parser) date(dst *Date) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		s, _, ok := p.text(n, path)
		if !ok {
			return
		}
		d, err := ParseDate(s)
		if err != nil {
			p.badf(path, "%v", err)
			return
		}
		*dst = d
	}
}

// strings decodes a list of strings into dst. Items that fail keep their
// index (as "") so later messages point at the right item.
func (p *parser) strings(dst *[]string) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		if n.Kind != yaml.SequenceNode {
			p.badf(path, "want a list, got %s", describe(n))
			return
		}
		out := make([]string, len(n.Content))
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			p.pos[ip] = item.Line
			out[i], _, _ = p.text(item, ip)
		}
		*dst = out
	}
}

// keep stores the raw node, for secrets decoded once both the value and
// its _file variant are known.
func keep(dst **yaml.Node) func(*yaml.Node, string) {
	return func(n *yaml.Node, _ string) { *dst = n }
}

// secret resolves a secret given inline (value, with ${VAR} references) or
// in a file (fileNode), refusing both at once. Inline values without any
// reference are remembered for Load's file mode check.
func (p *parser) secret(base, key string, value, fileNode *yaml.Node) Secret {
	path := join(base, key)
	switch {
	case value != nil && fileNode != nil:
		p.badf(path+"_file", "both %s and %s_file are set; keep one", key, key)
	case fileNode != nil:
		name, _, ok := p.text(fileNode, path+"_file")
		if !ok {
			return Secret{}
		}
		s, err := readSecretFile(p.dir, name)
		if err != nil {
			p.badf(path+"_file", "%v", err)
			return Secret{}
		}
		return NewSecret(s)
	case value != nil:
		s, refs, ok := p.text(value, path)
		if !ok {
			return Secret{}
		}
		if refs == 0 && s != "" {
			p.inline = append(p.inline, path)
		}
		return NewSecret(s)
	}
	return Secret{}
}

// config decodes the document's root.
func (p *parser) config(root *yaml.Node) *Config {
	c := &Config{Path: p.file, Destinations: map[string]*Destination{}, Jobs: map[string]*Job{}, Daemon: newDaemon(), Restore: Restore{Jobs: DefaultRestoreJobs()}}
	p.object(root, "", "a mapping with recipients, destinations and jobs", []field{
		{"recipients", p.strings(&c.Recipients)},
		{"destinations", func(n *yaml.Node, path string) {
			p.named(n, path, "a mapping of destination names to settings", func(name string, n *yaml.Node, path string) {
				c.Destinations[name] = p.destination(name, n, path)
				c.DestinationOrder = append(c.DestinationOrder, name)
			})
		}},
		{"jobs", func(n *yaml.Node, path string) {
			p.named(n, path, "a mapping of job names to settings", func(name string, n *yaml.Node, path string) {
				c.Jobs[name] = p.job(name, n, path)
				c.JobOrder = append(c.JobOrder, name)
			})
		}},
		{"daemon", func(n *yaml.Node, path string) { p.daemon(&c.Daemon, n, path) }},
		{"notify", func(n *yaml.Node, path string) { p.notify(&c.Notify, n, path) }},
		{"signing", func(n *yaml.Node, path string) { p.signing(&c.Signing, n, path) }},
		{"restore", func(n *yaml.Node, path string) {
			p.object(n, path, "a mapping with jobs and spool_dir", []field{
				{"jobs", p.integer(&c.Restore.Jobs)},
				{"spool_dir", p.str(&c.Restore.SpoolDir)},
			})
		}},
	})
	return c
}

// daemon decodes the daemon settings over their defaults.
func (p *parser) daemon(d *Daemon, n *yaml.Node, path string) {
	var token, tokenFile *yaml.Node
	p.object(n, path, "a mapping of daemon settings", []field{
		{"listen", p.str(&d.Listen)},
		{"token", keep(&token)},
		{"token_file", keep(&tokenFile)},
		{"allow", p.strings(&d.Allow)},
		{"max_concurrent", p.integer(&d.MaxConcurrent)},
		{"state_dir", p.str(&d.StateDir)},
		{"shutdown_timeout", p.duration(&d.ShutdownTimeout)},
		{"ha", p.boolean(&d.HA)},
		{"lease_ttl", p.duration(&d.LeaseTTL)},
		{"leftover_grace", p.duration(&d.LeftoverGrace)},
		{"repair_interval", p.duration(&d.RepairInterval)},
	})
	d.Token = p.secret(path, "token", token, tokenFile)
}

// notify decodes where run results are sent.
func (p *parser) notify(nt *Notify, n *yaml.Node, path string) {
	p.object(n, path, "a mapping with on_success, webhooks, slack and insecure_http", []field{
		{"on_success", p.boolean(&nt.OnSuccess)},
		{"webhooks", p.secrets(&nt.Webhooks)},
		{"slack", p.secrets(&nt.Slack)},
		{"insecure_http", p.boolean(&nt.InsecureHTTP)},
	})
}

// secrets decodes a list of secrets (URLs holding credentials).
func (p *parser) secrets(dst *[]Secret) func(*yaml.Node, string) {
	return func(n *yaml.Node, path string) {
		n = resolve(n)
		if n.Kind != yaml.SequenceNode {
			p.badf(path, "want a list, got %s", describe(n))
			return
		}
		out := make([]Secret, len(n.Content))
		for i, item := range n.Content {
			key := fmt.Sprintf("[%d]", i)
			p.pos[path+key] = item.Line
			out[i] = p.secret(path, key, item, nil)
		}
		*dst = out
	}
}

// destination decodes one destination.
func (p *parser) destination(name string, n *yaml.Node, path string) *Destination {
	d := &Destination{Name: name}
	var secret, secretFile, token, tokenFile *yaml.Node
	p.object(n, path, "a mapping of destination settings", []field{
		{"type", p.str(&d.Type)},
		{"endpoint", p.str(&d.Endpoint)},
		{"region", p.str(&d.Region)},
		{"bucket", p.str(&d.Bucket)},
		{"prefix", p.str(&d.Prefix)},
		{"path_style", p.boolean(&d.PathStyle)},
		{"access_key_id", p.str(&d.AccessKeyID)},
		{"secret_access_key", keep(&secret)},
		{"secret_access_key_file", keep(&secretFile)},
		{"session_token", keep(&token)},
		{"session_token_file", keep(&tokenFile)},
		{"ca_file", p.fileName(&d.CAFile)},
		{"insecure_http", p.boolean(&d.InsecureHTTP)},
		{"path", p.str(&d.Path)},
		{"object_lock", func(n *yaml.Node, path string) {
			d.ObjectLock = &ObjectLock{}
			p.object(n, path, "a mapping with mode", []field{
				{"mode", p.str(&d.ObjectLock.Mode)},
			})
		}},
	})
	d.SecretAccessKey = p.secret(path, "secret_access_key", secret, secretFile)
	d.SessionToken = p.secret(path, "session_token", token, tokenFile)
	return d
}

// job decodes one job over its defaults.
func (p *parser) job(name string, n *yaml.Node, path string) *Job {
	j := newJob(name)
	var pingURL, pingURLFile *yaml.Node
	p.object(n, path, "a mapping of job settings", []field{
		{"source", func(n *yaml.Node, path string) { p.source(&j.Source, n, path) }},
		{"destinations", p.strings(&j.Destinations)},
		{"recipients", p.strings(&j.Recipients)},
		{"schedule", p.str(&j.Schedule)},
		{"timezone", p.str(&j.Timezone)},
		{"compression", func(n *yaml.Node, path string) {
			p.object(n, path, "a mapping with level and threads", []field{
				{"level", p.integer(&j.Compression.Level)},
				{"threads", p.integer(&j.Compression.Threads)},
			})
		}},
		{"retention", func(n *yaml.Node, path string) {
			r := &j.Retention
			p.object(n, path, "a mapping of retention settings", []field{
				{"keep_within", p.duration(&r.KeepWithin)},
				{"min_keep", p.integer(&r.MinKeep)},
				{"keep_weekly", p.integer(&r.KeepWeekly)},
				{"keep_monthly", p.integer(&r.KeepMonthly)},
				{"allow_short", p.boolean(&r.AllowShort)},
			})
		}},
		{"rto", p.duration(&j.RTO)},
		{"max_shrink_percent", p.integer(&j.MaxShrinkPercent)},
		{"stall_timeout", p.duration(&j.StallTimeout)},
		{"ping_url", keep(&pingURL)},
		{"ping_url_file", keep(&pingURLFile)},
		{"ping_insecure_http", p.boolean(&j.PingInsecureHTTP)},
		{"drill", func(n *yaml.Node, path string) { p.drill(&j.Drill, n, path) }},
		{"protected_since", p.date(&j.ProtectedSince)},
	})
	j.PingURL = p.secret(path, "ping_url", pingURL, pingURLFile)
	return j
}

// drill decodes a job's drill settings.
func (p *parser) drill(d *Drill, n *yaml.Node, path string) {
	p.object(n, path, "a mapping of drill settings", []field{
		{"enabled", p.boolean(&d.Enabled)},
		{"schedule", p.str(&d.Schedule)},
		{"from", p.str(&d.From)},
		{"identity_file", p.fileName(&d.IdentityFile)},
		{"passphrase_file", p.fileName(&d.PassphraseFile)},
		{"target", func(n *yaml.Node, path string) {
			var password, passwordFile *yaml.Node
			t := &d.Target
			p.object(n, path, "a mapping with host, port, user, password or dir", []field{
				{"host", p.str(&t.Host)},
				{"port", p.integer(&t.Port)},
				{"user", p.str(&t.User)},
				{"password", keep(&password)},
				{"password_file", keep(&passwordFile)},
				{"dir", p.fileName(&t.Dir)},
			})
			t.Password = p.secret(path, "password", password, passwordFile)
		}},
		{"checks", func(n *yaml.Node, path string) {
			n = resolve(n)
			if n.Kind != yaml.SequenceNode {
				p.badf(path, "want a list of checks (name, query, expect), got %s", describe(n))
				return
			}
			for i, item := range n.Content {
				ip := fmt.Sprintf("%s[%d]", path, i)
				p.pos[ip] = item.Line
				var c DrillCheck
				p.object(item, ip, "a mapping with name, query and expect", []field{
					{"name", p.str(&c.Name)},
					{"query", p.str(&c.Query)},
					{"expect", p.str(&c.Expect)},
				})
				d.Checks = append(d.Checks, c)
			}
		}},
		{"warn_percent", p.integer(&d.WarnPercent)},
		{"max_age", p.duration(&d.MaxAge)},
	})
}

// source decodes a job's source.
func (p *parser) source(s *Source, n *yaml.Node, path string) {
	var password, passwordFile *yaml.Node
	p.object(n, path, "a mapping of source settings", []field{
		{"type", p.str(&s.Type)},
		{"host", p.str(&s.Host)},
		{"port", p.integer(&s.Port)},
		{"user", p.str(&s.User)},
		{"password", keep(&password)},
		{"password_file", keep(&passwordFile)},
		{"database", p.str(&s.Database)},
		{"format", p.str(&s.Format)},
		{"path", p.str(&s.Path)},
		{"command", p.strings(&s.Command)},
		{"env", func(n *yaml.Node, path string) {
			pairs, _ := p.mapping(n, path, "a mapping of variable names to values")
			s.Env = make(map[string]Secret, len(pairs))
			for _, kv := range pairs {
				ep := join(path, kv.key.Value)
				p.pos[ep] = kv.key.Line
				s.Env[kv.key.Value] = p.secret(path, kv.key.Value, kv.val, nil)
			}
		}},
		{"extension", p.str(&s.Extension)},
	})
	s.Password = p.secret(path, "password", password, passwordFile)
}
