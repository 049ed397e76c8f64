package snapshot

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/coffer-backup/coffer/config"
)

// conn is where a database tool connects: the parts PostgreSQL and MySQL
// share.
type conn struct {
	host, user, password, database string
	port                           int
}

func connFrom(src config.Source) conn {
	return conn{host: src.Host, port: src.Port, user: src.User, password: src.Password.Reveal(), database: src.Database}
}

// retarget aims c at target: a database name, or a URL with one of schemes
// whose host, port, user, password and database replace c's. It returns
// the parsed URL (nil for a plain name) for scheme-specific parameters.
func (c *conn) retarget(target string, schemes ...string) (*url.URL, error) {
	isURL := false
	for _, s := range schemes {
		isURL = isURL || strings.HasPrefix(target, s+"://")
	}
	if !isURL {
		c.database = target
		return nil, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("target URL: %w", redactURLError(err))
	}
	if h := u.Hostname(); h != "" {
		c.host = h
	}
	if ps := u.Port(); ps != "" {
		if c.port, err = strconv.Atoi(ps); err != nil {
			return nil, fmt.Errorf("target URL: bad port %q", ps)
		}
	}
	if u.User != nil {
		c.user = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			c.password = pw
		}
	}
	c.database = strings.TrimPrefix(u.Path, "/")
	if c.database == "" {
		return nil, fmt.Errorf("target URL names no database")
	}
	return u, nil
}

// describe names the server and database for messages, e.g. `postgres
// database "app" on db:5432`; never the password.
func (c conn) describe(kind string) string {
	host := c.host
	if host == "" {
		host = "localhost"
	}
	if c.port != 0 {
		host += ":" + strconv.Itoa(c.port)
	}
	return kind + " database " + strconv.Quote(c.database) + " on " + host
}
