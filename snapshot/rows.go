package snapshot

import (
	"database/sql"
	"errors"
)

// scanNames reads a one-column result of names, closing rows.
func scanNames(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// firstRow advances rows to the first row of a result and returns its
// columns; a result without columns or rows is an error.
func firstRow(rows *sql.Rows) ([]string, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, errors.New("the query returns no columns")
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("the query returned no rows")
	}
	return cols, nil
}
