// Command benchtool supports scripts/bench.sh: it creates buckets and is the
// "honest uploader" of the shell pipeline the benchmark compares Coffer
// with (stdin streamed to one S3 object with the SDK's multipart uploader,
// the same storage/s3 code path Coffer uses).
//
//	benchtool mkcert DIR
//	benchtool mkbucket ENDPOINT BUCKET
//	benchtool rmbucket ENDPOINT BUCKET
//	benchtool upload ENDPOINT BUCKET KEY < data
//
// Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; an https
// endpoint's certificate is checked against the system roots and
// AWS_CA_BUNDLE.
package main

import (
	"context"
	"fmt"
	"os"

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
	}
	return fmt.Errorf("unknown command %q", args[0])
}
