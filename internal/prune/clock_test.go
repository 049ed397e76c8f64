package prune_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/coffer-backup/coffer/internal/backuptest"
	"github.com/coffer-backup/coffer/internal/prune"
	"github.com/coffer-backup/coffer/storage"
	"github.com/coffer-backup/coffer/storage/fs"
)

// kinds are the real stores the clock tests run on.
var kinds = []struct {
	name   string
	stores func(t *testing.T) ([]storage.Destination, map[string]storage.Store)
}{
	{"local directories", twoDirs},
	{"MinIO", twoBuckets},
}

// TestRunRefusesHostClockOffFromStorage: the host clock is off from the
// destinations' own clocks (which are this machine's real time): jumped
// forward ten days, or behind by more than 5 minutes. Before anything is
// deleted the destination is refused, with a reason naming host time,
// storage time and the difference, in a dry run too, and nothing is
// deleted; within 5 minutes prune proceeds as before.
//
// The history (real ages 1d, 8d, 20d, 40d, 47d on both destinations) is
// such that a host clock ten days ahead would make the 20-day-old backup,
// really inside keep_within, look 30 days old and expired.
func TestRunRefusesHostClockOffFromStorage(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		for _, tc := range []struct {
			name   string
			offset time.Duration
			refuse string // in the reason; "" means prune proceeds
		}{
			{"host ten days ahead", 10 * day, "10d ahead of"},
			{"host 6 minutes behind", -6 * time.Minute, "behind the storage's clock"}, // 6m, give or take a second of Date resolution
			{"host 4 minutes ahead: within tolerance", 4 * time.Minute, ""},
			{"host 4 minutes behind: within tolerance", -4 * time.Minute, ""},
		} {
			t.Run(kind.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				dests, stores := kind.stores(t)
				real := time.Now().UTC().Truncate(time.Second)
				ids := map[time.Duration]string{}
				for _, age := range []time.Duration{day, 8 * day, 20 * day, 40 * day, 47 * day} {
					ids[age] = putBackup(t, stores, "app", real.Add(-age), "primary", "offsite")
				}
				before := map[string][]string{"primary": backuptest.Keys(t, stores["primary"]), "offsite": backuptest.Keys(t, stores["offsite"])}
				host := real.Add(tc.offset)

				dry, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: host, DryRun: true}}, zaptest.NewLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				deletions := 0
				res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: host, OnDelete: func(prune.Item) { deletions++ }}}, zaptest.NewLogger(t))
				if err != nil {
					t.Fatal(err)
				}

				if tc.refuse == "" {
					if len(res.Refused) > 0 || len(dry.Refused) > 0 {
						t.Fatalf("refused %v (dry run %v), want prune to proceed within the tolerance", res.Refused, dry.Refused)
					}
					for _, name := range []string{"primary", "offsite"} {
						if dry.Deleted(name) != 2 || res.Deleted(name) != 2 {
							t.Errorf("%s: %d deleted (dry run: %d would be), want the 2 expired backups", name, res.Deleted(name), dry.Deleted(name))
						}
						got := backuptest.Keys(t, stores[name])
						for age, id := range ids {
							gone := !slices.ContainsFunc(got, func(k string) bool { return strings.Contains(k, id) })
							if gone != (age >= 40*day) {
								t.Errorf("%s: backup %s (%s old) gone = %v, want %v", name, id, age, gone, age >= 40*day)
							}
						}
					}
					return
				}

				for _, r := range []*prune.Result{dry, res} {
					for _, name := range []string{"primary", "offsite"} {
						why := r.Refused[name]
						for _, want := range []string{tc.refuse, "host clock " + host.Format("2006-01-02T"), "storage's clock " + real.Format("2006-01-02T"), "refusing to prune"} {
							if !strings.Contains(why, want) {
								t.Errorf("dry run %v: Refused[%s] = %q, want it to contain %q", r.DryRun, name, why, want)
							}
						}
					}
					if len(r.Items) > 0 || r.Deleted("") > 0 {
						t.Errorf("dry run %v: items %+v, want none on refused destinations", r.DryRun, r.Items)
					}
				}
				if deletions > 0 {
					t.Errorf("%d deletions attempted, want none", deletions)
				}
				for _, name := range []string{"primary", "offsite"} {
					if got := backuptest.Keys(t, stores[name]); !slices.Equal(got, before[name]) {
						t.Errorf("%s changed although the host clock is %s off:\n got %v\nwant %v", name, tc.offset, got, before[name])
					}
				}
			})
		}
	}
}

// noClock is a real local directory behind a type that hides its
// storage.Clock, as any store that cannot tell its time.
type noClock struct{ storage.Store }

// brokenClock is a real local directory whose time cannot be read.
type brokenClock struct{ *fs.Store }

var errNoTime = errors.New("injected: no time today")

func (brokenClock) Now(context.Context) (time.Time, error) { return time.Time{}, errNoTime }

// TestRunRefusesUnknownStorageTime: a destination whose time cannot be
// read (a store without storage.Clock, or one whose clock fails) is
// refused and nothing is deleted there, while the other, whose clock
// agrees with the host's, is pruned.
func TestRunRefusesUnknownStorageTime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		wrap func(storage.Store) storage.Store
		want string
	}{
		{"no storage.Clock", func(s storage.Store) storage.Store { return noClock{s} }, "cannot tell its own time"},
		{"clock fails", func(s storage.Store) storage.Store { return brokenClock{s.(*fs.Store)} }, "cannot read the storage's time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dests, stores := twoDirs(t)
			real := time.Now().UTC().Truncate(time.Second)
			for _, age := range []time.Duration{day, 8 * day, 40 * day, 47 * day} {
				putBackup(t, stores, "app", real.Add(-age), "primary", "offsite")
			}
			before := backuptest.Keys(t, stores["offsite"])
			dests[1].Store = tc.wrap(stores["offsite"])
			res, err := prune.Run(t.Context(), prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: real}}, zaptest.NewLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if why := res.Refused["offsite"]; !strings.Contains(why, tc.want) {
				t.Errorf("Refused[offsite] = %q, want it to contain %q", why, tc.want)
			}
			if got := backuptest.Keys(t, stores["offsite"]); !slices.Equal(got, before) {
				t.Errorf("offsite changed although its time is unknown:\n got %v\nwant %v", got, before)
			}
			if _, refused := res.Refused["primary"]; refused || res.Deleted("primary") != 2 {
				t.Errorf("primary: refused %q, %d deleted; want it pruned (2 expired)", res.Refused["primary"], res.Deleted("primary"))
			}
		})
	}
}

// cancellingClock is a real local directory whose time read is cut short
// by a shutdown: it cancels the run's context and fails as a cancelled
// request does.
type cancellingClock struct {
	*fs.Store
	cancel context.CancelFunc
}

func (c cancellingClock) Now(ctx context.Context) (time.Time, error) {
	c.cancel()
	return time.Time{}, ctx.Err()
}

// TestRunCancelledIsNotRefused: a clock read cut short by cancellation
// (SIGTERM to the daemon) ends the run with the cancellation, not a
// refusal that would be alerted as "clocks disagree", and deletes
// nothing there or after.
func TestRunCancelledIsNotRefused(t *testing.T) {
	t.Parallel()
	dests, stores := twoDirs(t)
	real := time.Now().UTC().Truncate(time.Second)
	for _, age := range []time.Duration{day, 8 * day, 40 * day, 47 * day} {
		putBackup(t, stores, "app", real.Add(-age), "primary", "offsite")
	}
	before := map[string][]string{"primary": backuptest.Keys(t, stores["primary"]), "offsite": backuptest.Keys(t, stores["offsite"])}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range dests {
		dests[i].Store = cancellingClock{stores[dests[i].Name].(*fs.Store), cancel}
	}
	res, err := prune.Run(ctx, prune.Request{Job: "app", Destinations: dests, Trust: testTrust, Options: prune.Options{Policy: defaultPolicy, Now: real}}, zaptest.NewLogger(t))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res != nil && len(res.Refused) > 0 {
		t.Errorf("Refused = %v, want none: a cancelled run is not a refusal", res.Refused)
	}
	for name, keys := range before {
		if got := backuptest.Keys(t, stores[name]); !slices.Equal(got, keys) {
			t.Errorf("%s changed by a cancelled prune:\n got %v\nwant %v", name, got, keys)
		}
	}
}
