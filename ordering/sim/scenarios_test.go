package sim

import "time"

// partitionScenario: a group of 5-20 members under churn, with a
// partition, a crash and a long offline stretch.
func partitionScenario(seed uint64) Config {
	cfg := DefaultConfig(seed, 5+int(seed%16))
	cfg.OpRate = 0.5
	cfg.Partitions = []Window{{At: 5 * time.Second, Until: 12 * time.Second}}
	cfg.Crashes = []Window{{At: 8 * time.Second, Until: 15 * time.Second}}
	cfg.Offline = []Window{{At: 3 * time.Second, Until: 20 * time.Second}}
	return cfg
}

// largeMessageScenario is partitionScenario with files: one every five
// seconds on average, 16 KiB to 4 MiB, sent as 256 KiB messages among the
// texts, so that members crashed, offline or cut off must page through
// multi-megabyte epochs to catch up.
func largeMessageScenario(seed uint64) Config {
	cfg := DefaultConfig(seed, 5+int(seed%8))
	cfg.OpRate = 0.5
	cfg.FileRate, cfg.FileSize = 0.2, 4<<20
	cfg.Partitions = []Window{{At: 5 * time.Second, Until: 12 * time.Second}}
	cfg.Crashes = []Window{{At: 8 * time.Second, Until: 15 * time.Second}}
	cfg.Offline = []Window{{At: 3 * time.Second, Until: 20 * time.Second}}
	return cfg
}

// concurrentScenario: eight members changing the membership twice a
// second with short backoffs, so that commits collide.
func concurrentScenario(seed uint64) Config {
	cfg := DefaultConfig(seed, 8)
	cfg.OpRate = 2
	cfg.Duration = 20 * time.Second
	cfg.Ordering.CommitBackoff = 50 * time.Millisecond
	return cfg
}

// longPartitionScenario: ten members talking a message a second each,
// split for over a minute with both halves committing, two crashes, and a
// member offline across the split (the large sweep's faults).
func longPartitionScenario(seed uint64) Config {
	cfg := DefaultConfig(seed, 10)
	cfg.MessageRate = 1
	cfg.Duration = 100 * time.Second
	cfg.Partitions = []Window{{At: cfg.Duration / 3, Until: cfg.Duration}}
	cfg.Crashes = []Window{{At: 10 * time.Second, Until: 40 * time.Second}, {At: 60 * time.Second, Until: 90 * time.Second}}
	cfg.Offline = []Window{{At: 20 * time.Second, Until: 80 * time.Second}}
	return cfg
}
