package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coffer-backup/coffer/config"
	"github.com/coffer-backup/coffer/crypto/sign"
	"github.com/coffer-backup/coffer/internal/rollback"
	"github.com/coffer-backup/coffer/manifest"
	"github.com/coffer-backup/coffer/storage"
)

// skipSignatureFlag adds --insecure-skip-signature to a command that
// reads manifests.
func skipSignatureFlag(cmd *cobra.Command, skip *bool) {
	cmd.Flags().BoolVar(skip, "insecure-skip-signature", false,
		"EMERGENCY: read manifests whose signature is missing or fails (each is logged as a warning); anyone who can write to a bucket can then make Coffer read their data")
}

// readTrust is how a reading command treats manifest signatures: trust the
// configured public keys; with skip, read manifests whose signature fails
// anyway, with a warning for each.
func readTrust(cfg *config.Config, skip bool, log *zap.Logger) (manifest.Trust, error) {
	trust := manifest.ConfiguredTrust(cfg.Signing)
	if !skip {
		if len(cfg.Signing.PublicKeys) == 0 {
			return trust, usageErr(fmt.Errorf("%s trusts no signing key: set signing.public_keys (or signing.key_file) so manifests can be checked; "+
				"to read unsigned or unverifiable backups anyway, give --insecure-skip-signature", cfg.Path))
		}
		return trust, nil
	}
	log.Warn("--insecure-skip-signature: manifests whose signature is missing or fails are read anyway; anyone who can write to a bucket can make Coffer read data of their own")
	trust.SkipSignature = true
	trust.Warn = func(object string, err error) {
		log.Warn("manifest signature NOT verified; read anyway (--insecure-skip-signature)", zap.String("manifest", object), zap.Error(err))
	}
	return trust, nil
}

// loadSigner loads the signing key of a command that writes manifests.
func loadSigner(cfg *config.Config) (*sign.Signer, error) {
	s, err := cfg.Signing.Signer()
	if err != nil {
		return nil, usageErr(fmt.Errorf("%s: %w", cfg.Path, err))
	}
	return s, nil
}

// signatureHint is added to an error that a failed signature caused,
// including "no backup found" when the catalog names a key it did not use
// for its signature.
func signatureHint(err error) error {
	if err == nil {
		return nil
	}
	var se *manifest.SignatureError
	signature := errors.As(err, &se) || errors.Is(err, sign.ErrBadSignature) || errors.Is(err, sign.ErrUnknownKey) ||
		strings.Contains(err.Error(), "/"+manifest.FileName+" on ") && strings.Contains(err.Error(), ": signature: ")
	if !signature {
		return err
	}
	return fmt.Errorf("%w\n(a manifest whose signature fails may have been forged or changed by someone with write access to the bucket; "+
		"check signing.public_keys, and only if you trust the object, rerun with --insecure-skip-signature)", err)
}

// verifiedMark is the rollback mark of a backup whose manifest verified
// (signedBy set, a sequence number), or nil: an unverified manifest can
// neither raise the mark nor hide a rollback.
func verifiedMark(id string, sequence int64, signedBy string) *rollback.Mark {
	if signedBy == "" || sequence < 1 {
		return nil
	}
	return &rollback.Mark{Sequence: sequence, ID: id}
}

// observeNewest records newest, the mark of the newest visible backup of
// job (nil: none verified), in the state directory's rollback record and
// returns the warning when it is older than a backup seen before. dests
// are the job's destinations; the first configured one names where the
// job's backups live. Problems with the record are logged, never fatal.
func observeNewest(cfg *config.Config, job *config.Job, dests []storage.Destination, newest *rollback.Mark, log *zap.Logger) *rollback.Warning {
	if newest == nil {
		return nil
	}
	where := ""
	for _, d := range dests {
		if len(job.Destinations) > 0 && d.Name == job.Destinations[0] {
			where = d.Store.String()
		}
	}
	dir, err := cfg.StateDir()
	var st *rollback.State
	if err == nil {
		st, err = rollback.Load(dir)
	}
	if err != nil {
		log.Warn("rollback check skipped: state not readable (set daemon.state_dir to a writable directory)", zap.Error(err))
		return nil
	}
	w := st.Observe(rollback.Key(job.Name, where), job.Name, *newest, time.Now())
	if w == nil {
		if err := st.Save(); err != nil {
			log.Warn("rollback state not saved", zap.Error(err))
		}
	}
	return w
}
