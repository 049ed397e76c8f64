// Command benchtool supports scripts/bench.sh: it creates buckets and is the
// "honest uploader" of the shell pipeline the benchmark compares Coffer
// with (stdin streamed to one S3 object with the SDK's multipart uploader,
// the same storage/s3 code path Coffer uses).
//
//	benchtool mkcert DIR
//	benchtool mkbucket ENDPOINT BUCKET
//	benchtool rmbucket ENDPOINT BUCKET
//	benchtool upload ENDPOINT BUCKET KEY < data
//	benchtool download ENDPOINT BUCKET KEY > data
//	benchtool list ENDPOINT BUCKET PREFIX
//	benchtool rows BYTES > data
//
// download is the shell restore's fetch (the same storage/s3 reader Coffer
// uses); list prints the keys under PREFIX; rows writes BYTES of
// realistic CSV rows (ids, timestamps, amounts, text, JSON; about 4:1 under
// zstd -3, like a database dump), the exec source of the memory benchmark.
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; an https
// endpoint's certificate is checked against the system roots and
// AWS_CA_BUNDLE.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/coffer-backup/coffer/storage/s3"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 2 && args[0] == "mkcert" {
		return mkcert(args[1])
	}
	if len(args) == 2 && args[0] == "rows" {
		n, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return fmt.Errorf("rows BYTES: %w", err)
		}
		return rows(os.Stdout, n)
	}
	if len(args) < 3 {
		return fmt.Errorf("usage: benchtool mkcert DIR | mkbucket|rmbucket ENDPOINT BUCKET | upload ENDPOINT BUCKET KEY")
	}
	ctx := context.Background()
	st, err := s3.New(ctx, s3.Options{
		Endpoint: args[1], Region: "us-east-1", Bucket: args[2], PathStyle: true,
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
	})
	if err != nil {
		return err
	}
	switch args[0] {
	case "mkbucket":
		return st.EnsureBucket(ctx)
	case "rmbucket":
		return st.RemoveBucket(ctx)
	case "upload":
		if len(args) != 4 {
			return fmt.Errorf("upload needs ENDPOINT BUCKET KEY")
		}
		info, err := st.Put(ctx, args[3], os.Stdin)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "uploaded %d bytes to %s\n", info.Size, args[3])
		return nil
	case "download":
		if len(args) != 4 {
			return fmt.Errorf("download needs ENDPOINT BUCKET KEY")
		}
		rc, err := st.Get(ctx, args[3])
		if err != nil {
			return err
		}
		defer rc.Close()
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		if _, err := io.Copy(w, rc); err != nil {
			return err
		}
		return w.Flush()
	case "list":
		if len(args) != 4 {
			return fmt.Errorf("list needs ENDPOINT BUCKET PREFIX")
		}
		for o, err := range st.List(ctx, args[3]) {
			if err != nil {
				return err
			}
			fmt.Println(o.Key)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
