package snapshot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/snapshot/dumpinfo"
)

// myParams are the connection parameters of a MySQL or MariaDB server.
// A host starting with "/" is a Unix socket.
type myParams struct {
	conn
}

func myParamsFrom(src config.Source) myParams {
	return myParams{conn: connFrom(src)}
}

// withTarget returns p aimed at target: a database name, or a mysql:// URL
// whose parts replace those of p.
func (p myParams) withTarget(target string) (myParams, error) {
	_, err := p.retarget(target, "mysql")
	return p, err
}

// open returns a database/sql handle on database db ("" for none).
func (p myParams) open(db string) (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = p.user, p.password, db
	port := p.port
	if port == 0 {
		port = 3306
	}
	switch {
	case strings.HasPrefix(p.host, "/"):
		cfg.Net, cfg.Addr = "unix", p.host
	case p.host == "" || p.host == "localhost":
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	default:
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(p.host, strconv.Itoa(port))
	}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql connection settings: %w", err)
	}
	return sql.OpenDB(c), nil
}

// defaultsFile writes the connection settings (password included) to a new
// 0600 option file for --defaults-extra-file. The caller removes it.
func (p myParams) defaultsFile() (string, error) {
	f, err := os.CreateTemp("", "coffer-my-*.cnf") // created 0600
	if err != nil {
		return "", fmt.Errorf("mysql defaults file: %w", err)
	}
	var b strings.Builder
	b.WriteString("[client]\n")
	opt := func(k, v string) {
		if v != "" {
			b.WriteString(k + "=" + optionQuote(v) + "\n")
		}
	}
	opt("user", p.user)
	opt("password", p.password)
	if strings.HasPrefix(p.host, "/") {
		opt("socket", p.host)
	} else {
		opt("host", p.host)
	}
	if p.port != 0 {
		opt("port", strconv.Itoa(p.port))
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("mysql defaults file: %w", err)
	}
	return f.Name(), nil
}

// optionQuote quotes a value for a MySQL option file.
func optionQuote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(v) + `"`
}

// String names the server and database, without the password.
func (p myParams) String() string { return p.describe("mysql") }

// run runs tool (the first of names found) with a fresh defaults file as its
// first argument, then removes the file.
func (p myParams) run(names []string, args []string, run func(child) error) error {
	path, err := lookTool(names...)
	if err != nil {
		return err
	}
	cnf, err := p.defaultsFile()
	if err != nil {
		return err
	}
	defer os.Remove(cnf)
	c := child{name: names[0], path: path, args: append([]string{"--defaults-extra-file=" + cnf}, args...), secrets: []string{p.password}}
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		c.name = path[i+1:]
	}
	return run(c)
}

var (
	myDumpTools   = []string{"mariadb-dump", "mysqldump"}
	myClientTools = []string{"mariadb", "mysql"}
)

// mySource dumps a MySQL or MariaDB database with mariadb-dump or mysqldump.
type mySource struct{ p myParams }

func newMySQLSource(src config.Source) (*mySource, error) {
	if src.Database == "" {
		return nil, fmt.Errorf("mysql source: database is empty")
	}
	return &mySource{p: myParamsFrom(src)}, nil
}

// Describe asks the server and the dump tool for their versions.
func (s *mySource) Describe(ctx context.Context) (dumpinfo.Info, error) {
	info := dumpinfo.Info{Kind: "mysql", Database: s.p.database, Format: "sql"}
	db, err := s.p.open(s.p.database)
	if err != nil {
		return info, err
	}
	defer db.Close()
	if err := db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&info.ServerVersion); err != nil {
		return info, fmt.Errorf("mysql server version of %s: %w", s.p, err)
	}
	path, err := lookTool(myDumpTools...)
	if err != nil {
		return info, err
	}
	info.ToolVersion, err = child{name: "mysql dump tool", path: path, args: []string{"--version"}}.output(ctx)
	return info, err
}

// Dump runs the dump tool in one transaction and streams its SQL to w,
// counting the rows of every table in the SQL as it passes (the tool's
// snapshot cannot be shared, so the dump itself is counted).
func (s *mySource) Dump(ctx context.Context, w io.Writer) (*dumpinfo.Tables, error) {
	args := []string{"--single-transaction", "--routines", "--triggers", "--events", "--hex-blob",
		"--default-character-set=utf8mb4", "--", s.p.database}
	counter := newSQLCounter(w)
	if err := s.p.run(myDumpTools, args, func(c child) error { return c.dump(ctx, counter) }); err != nil {
		return nil, err
	}
	return counter.Tables(), nil
}
