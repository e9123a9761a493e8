package sim

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"
)

// Row is the figures of one run, flat for CSV and JSON. Times are in
// simulated milliseconds, so they are exact and replay with the seed.
type Row struct {
	Seed        uint64  `json:"seed"`
	Members     int     `json:"members"` // initial group size
	Commits     int     `json:"commits"`
	Forks       int     `json:"forks"`
	ForkRate    float64 `json:"fork_rate"`
	Rollbacks   int     `json:"rollbacks"`
	MaxRollback int     `json:"max_rollback"`
	Rejoins     int     `json:"rejoins"`
	AppMessages int     `json:"app_messages"`
	Bytes       int     `json:"bytes"`
	// BytesPerMember is Bytes over the initial group size.
	BytesPerMember float64 `json:"bytes_per_member"`
	HeadBytes      int     `json:"head_bytes"`
	// HeadBytesPerAppMessage is the head/ack overhead: HeadBytes over
	// AppMessages (0 when no application message was sent).
	HeadBytesPerAppMessage float64 `json:"head_bytes_per_app_message"`
	// CommitBytes are the commits' envelopes, one copy each.
	CommitBytes int `json:"commit_bytes"`
	// SyncBytes are catch-up requests and answers; SyncMissed the bytes of
	// the envelopes they brought that their requesters had missed;
	// SyncOverhead is the first over the second (0 when nothing was
	// missed): catch-up costs about what was missed when it is near 1.
	SyncBytes    int     `json:"sync_bytes"`
	SyncMissed   int     `json:"sync_missed"`
	SyncOverhead float64 `json:"sync_overhead"`
	// The catch-up bytes by what they carry (see ordering.SyncCost):
	// requests and their lists (epochs held, log digests, heads held,
	// envelopes held), answers and their parts (envelopes, heads of
	// vote trades, refusals, GroupInfos), and the answers with
	// envelopes that brought their requester nothing.
	SyncRequests     int `json:"sync_requests"`
	SyncRequestBytes int `json:"sync_request_bytes"`
	SyncHave         int `json:"sync_have"`
	SyncLogs         int `json:"sync_logs"`
	SyncHeldVotes    int `json:"sync_held_votes"`
	SyncHeldLogs     int `json:"sync_held_logs"`
	SyncAnswers      int `json:"sync_answers"`
	SyncAnswerBytes  int `json:"sync_answer_bytes"`
	SyncEnvelopes    int `json:"sync_envelopes"`
	SyncHeads        int `json:"sync_heads"`
	SyncRefusals     int `json:"sync_refusals"`
	SyncRefusalCount int `json:"sync_refusal_count"`
	SyncGroupInfo    int `json:"sync_group_info"`
	SyncEmpty        int `json:"sync_empty"`
	// SyncNewEpochs counts, answer by answer, the epochs of which an
	// answer brought its requester something new (see SyncCost.NewEpochs).
	SyncNewEpochs   int `json:"sync_new_epochs"`
	SyncSketches    int `json:"sync_sketches"`
	SyncRelists     int `json:"sync_relists"`
	SyncLeftOut     int `json:"sync_left_out"`
	SyncLeftOutAsks int `json:"sync_left_out_asks"`
	// SyncRemovedRequests and SyncRemovedRequestBytes: the requests of
	// members that held themselves removed (see SyncCost).
	SyncRemovedRequests     int `json:"sync_removed_requests"`
	SyncRemovedRequestBytes int `json:"sync_removed_request_bytes"`
	// SyncJoinAsks and SyncJoinEmpty: new members' asks for the log of
	// their join epoch, and those that brought nothing (not in SyncEmpty).
	SyncJoinAsks  int `json:"sync_join_asks"`
	SyncJoinEmpty int `json:"sync_join_empty"`
	// SyncPrompts and SyncPromptEmpty: asks made so that a peer asks back
	// for a waiting leave, and those that brought nothing (not in
	// SyncEmpty).
	SyncPrompts     int `json:"sync_prompts"`
	SyncPromptEmpty int `json:"sync_prompt_empty"`
	// ConvergenceMS is the time from the network healing to agreement;
	// -1 when the members never came to agree.
	ConvergenceMS  float64 `json:"convergence_ms"`
	LatencyP50MS   float64 `json:"latency_p50_ms"`
	LatencyP99MS   float64 `json:"latency_p99_ms"`
	FinalEpoch     uint64  `json:"final_epoch"`
	FinalMembers   int     `json:"final_members"`
	Violations     int     `json:"violations"`
	FirstViolation string  `json:"first_violation,omitempty"`
}

// NewRow flattens the result of running cfg.
func NewRow(cfg Config, r *Result) Row {
	m := &r.Metrics
	row := Row{
		Seed: cfg.Seed, Members: cfg.Members,
		Commits: m.Commits, Forks: m.Forks, ForkRate: m.ForkRate(),
		Rollbacks: m.Rollbacks, MaxRollback: m.MaxRollback, Rejoins: m.Rejoins,
		AppMessages: m.AppMessages, Bytes: m.Bytes, HeadBytes: m.HeadBytes, CommitBytes: m.CommitBytes,
		ConvergenceMS: -1,
		LatencyP50MS:  ms(m.Latency(50)), LatencyP99MS: ms(m.Latency(99)),
		FinalEpoch: m.FinalEpoch, FinalMembers: m.FinalMembers,
		Violations: len(r.Violations),
	}
	if cfg.Members > 0 {
		row.BytesPerMember = float64(m.Bytes) / float64(cfg.Members)
	}
	if m.AppMessages > 0 {
		row.HeadBytesPerAppMessage = float64(m.HeadBytes) / float64(m.AppMessages)
	}
	row.SyncBytes, row.SyncMissed = m.SyncBytes, m.SyncMissed
	c := m.Sync
	row.SyncRequests, row.SyncRequestBytes = c.Requests, c.RequestBytes
	row.SyncHave, row.SyncLogs, row.SyncHeldVotes, row.SyncHeldLogs = c.Have, c.Logs, c.HeldVotes, c.HeldLogs
	row.SyncAnswers, row.SyncAnswerBytes = c.Answers, c.AnswerBytes
	row.SyncEnvelopes, row.SyncHeads, row.SyncRefusals = c.Envelopes, c.Heads, c.Refusals
	row.SyncRefusalCount, row.SyncGroupInfo, row.SyncEmpty = c.RefusalCount, c.GroupInfo, c.Empty
	row.SyncNewEpochs = c.NewEpochs
	row.SyncSketches, row.SyncRelists = c.Sketches, c.Relists
	row.SyncLeftOut, row.SyncLeftOutAsks = c.LeftOut, c.LeftOutAsks
	row.SyncRemovedRequests, row.SyncRemovedRequestBytes = c.RemovedRequests, c.RemovedRequestBytes
	row.SyncJoinAsks, row.SyncJoinEmpty = c.JoinAsks, c.JoinEmpty
	row.SyncPrompts, row.SyncPromptEmpty = c.Prompts, c.PromptEmpty
	if m.SyncMissed > 0 {
		row.SyncOverhead = float64(m.SyncBytes) / float64(m.SyncMissed)
	}
	if m.ConvergenceTime >= 0 {
		row.ConvergenceMS = ms(m.ConvergenceTime)
	}
	if len(r.Violations) > 0 {
		row.FirstViolation = r.Violations[0]
	}
	return row
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Summary is the figures of the runs of one group size.
type Summary struct {
	Members int `json:"members"`
	Runs    int `json:"runs"`
	// NotConverged counts the runs that never came to agree; they are
	// left out of the convergence percentiles.
	NotConverged int `json:"not_converged"`
	// ConvergenceP50MS and ConvergenceP99MS are nearest-rank percentiles
	// over the runs (with fewer than 100 runs, p99 is the slowest run).
	ConvergenceP50MS float64 `json:"convergence_p50_ms"`
	ConvergenceP99MS float64 `json:"convergence_p99_ms"`
	ForkRateMean     float64 `json:"fork_rate_mean"`
	// HeadBytesPerAppMessage pools the runs: all head bytes over all
	// application messages.
	HeadBytesPerAppMessage float64 `json:"head_bytes_per_app_message"`
	MaxRollback            int     `json:"max_rollback"`
	// Violating counts the runs with a property violation.
	Violating int `json:"violating"`
}

// Summarize groups rows by group size, in increasing size.
func Summarize(rows []Row) []Summary {
	bySize := map[int][]Row{}
	var sizes []int
	for _, r := range rows {
		if _, ok := bySize[r.Members]; !ok {
			sizes = append(sizes, r.Members)
		}
		bySize[r.Members] = append(bySize[r.Members], r)
	}
	slices.Sort(sizes)
	out := make([]Summary, 0, len(sizes))
	for _, size := range sizes {
		rs := bySize[size]
		s := Summary{Members: size, Runs: len(rs)}
		var conv []float64
		var forkRates float64
		var heads, apps int
		for _, r := range rs {
			if r.ConvergenceMS < 0 {
				s.NotConverged++
			} else {
				conv = append(conv, r.ConvergenceMS)
			}
			forkRates += r.ForkRate
			heads += r.HeadBytes
			apps += r.AppMessages
			s.MaxRollback = max(s.MaxRollback, r.MaxRollback)
			if r.Violations > 0 {
				s.Violating++
			}
		}
		s.ConvergenceP50MS = percentile(conv, 50)
		s.ConvergenceP99MS = percentile(conv, 99)
		s.ForkRateMean = forkRates / float64(len(rs))
		if apps > 0 {
			s.HeadBytesPerAppMessage = float64(heads) / float64(apps)
		}
		out = append(out, s)
	}
	return out
}

// percentile is the nearest-rank p-th percentile (0-100) of v, as
// Metrics.Latency computes it; 0 for no values.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	i := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

// Report is what a simulator command produced: the command line that
// reproduces it, one row per run and a summary per group size.
type Report struct {
	Command string    `json:"command"`
	Runs    []Row     `json:"runs"`
	Summary []Summary `json:"summary"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// column is one CSV column of a Row.
type column struct {
	name string
	get  func(*Row) string
	set  func(*Row, string) error
}

func intCol(name string, f func(*Row) *int) column {
	return column{name,
		func(r *Row) string { return strconv.Itoa(*f(r)) },
		func(r *Row, s string) (err error) { *f(r), err = strconv.Atoi(s); return err }}
}

func uintCol(name string, f func(*Row) *uint64) column {
	return column{name,
		func(r *Row) string { return strconv.FormatUint(*f(r), 10) },
		func(r *Row, s string) (err error) { *f(r), err = strconv.ParseUint(s, 10, 64); return err }}
}

func floatCol(name string, f func(*Row) *float64) column {
	return column{name,
		func(r *Row) string { return formatFloat(*f(r)) },
		func(r *Row, s string) (err error) { *f(r), err = strconv.ParseFloat(s, 64); return err }}
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// rowColumns are the CSV columns of a run, in order. The violations
// column holds the count; the first violation's text is in JSON only.
var rowColumns = []column{
	uintCol("seed", func(r *Row) *uint64 { return &r.Seed }),
	intCol("members", func(r *Row) *int { return &r.Members }),
	intCol("commits", func(r *Row) *int { return &r.Commits }),
	intCol("forks", func(r *Row) *int { return &r.Forks }),
	floatCol("fork_rate", func(r *Row) *float64 { return &r.ForkRate }),
	intCol("rollbacks", func(r *Row) *int { return &r.Rollbacks }),
	intCol("max_rollback", func(r *Row) *int { return &r.MaxRollback }),
	intCol("rejoins", func(r *Row) *int { return &r.Rejoins }),
	intCol("app_messages", func(r *Row) *int { return &r.AppMessages }),
	intCol("bytes", func(r *Row) *int { return &r.Bytes }),
	floatCol("bytes_per_member", func(r *Row) *float64 { return &r.BytesPerMember }),
	intCol("head_bytes", func(r *Row) *int { return &r.HeadBytes }),
	floatCol("head_bytes_per_app_message", func(r *Row) *float64 { return &r.HeadBytesPerAppMessage }),
	intCol("commit_bytes", func(r *Row) *int { return &r.CommitBytes }),
	intCol("sync_bytes", func(r *Row) *int { return &r.SyncBytes }),
	intCol("sync_missed", func(r *Row) *int { return &r.SyncMissed }),
	floatCol("sync_overhead", func(r *Row) *float64 { return &r.SyncOverhead }),
	intCol("sync_requests", func(r *Row) *int { return &r.SyncRequests }),
	intCol("sync_request_bytes", func(r *Row) *int { return &r.SyncRequestBytes }),
	intCol("sync_have", func(r *Row) *int { return &r.SyncHave }),
	intCol("sync_logs", func(r *Row) *int { return &r.SyncLogs }),
	intCol("sync_held_votes", func(r *Row) *int { return &r.SyncHeldVotes }),
	intCol("sync_held_logs", func(r *Row) *int { return &r.SyncHeldLogs }),
	intCol("sync_answers", func(r *Row) *int { return &r.SyncAnswers }),
	intCol("sync_answer_bytes", func(r *Row) *int { return &r.SyncAnswerBytes }),
	intCol("sync_envelopes", func(r *Row) *int { return &r.SyncEnvelopes }),
	intCol("sync_heads", func(r *Row) *int { return &r.SyncHeads }),
	intCol("sync_refusals", func(r *Row) *int { return &r.SyncRefusals }),
	intCol("sync_refusal_count", func(r *Row) *int { return &r.SyncRefusalCount }),
	intCol("sync_group_info", func(r *Row) *int { return &r.SyncGroupInfo }),
	intCol("sync_empty", func(r *Row) *int { return &r.SyncEmpty }),
	intCol("sync_new_epochs", func(r *Row) *int { return &r.SyncNewEpochs }),
	intCol("sync_sketches", func(r *Row) *int { return &r.SyncSketches }),
	intCol("sync_relists", func(r *Row) *int { return &r.SyncRelists }),
	intCol("sync_left_out", func(r *Row) *int { return &r.SyncLeftOut }),
	intCol("sync_left_out_asks", func(r *Row) *int { return &r.SyncLeftOutAsks }),
	intCol("sync_removed_requests", func(r *Row) *int { return &r.SyncRemovedRequests }),
	intCol("sync_removed_request_bytes", func(r *Row) *int { return &r.SyncRemovedRequestBytes }),
	intCol("sync_join_asks", func(r *Row) *int { return &r.SyncJoinAsks }),
	intCol("sync_join_empty", func(r *Row) *int { return &r.SyncJoinEmpty }),
	intCol("sync_prompts", func(r *Row) *int { return &r.SyncPrompts }),
	intCol("sync_prompt_empty", func(r *Row) *int { return &r.SyncPromptEmpty }),
	floatCol("convergence_ms", func(r *Row) *float64 { return &r.ConvergenceMS }),
	floatCol("latency_p50_ms", func(r *Row) *float64 { return &r.LatencyP50MS }),
	floatCol("latency_p99_ms", func(r *Row) *float64 { return &r.LatencyP99MS }),
	uintCol("final_epoch", func(r *Row) *uint64 { return &r.FinalEpoch }),
	intCol("final_members", func(r *Row) *int { return &r.FinalMembers }),
	intCol("violations", func(r *Row) *int { return &r.Violations }),
}

// CSVHeader returns the CSV column names of a run row.
func CSVHeader() []string {
	h := make([]string, len(rowColumns))
	for i, c := range rowColumns {
		h[i] = c.name
	}
	return h
}

// WriteCSV writes a header and one line per row.
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader()); err != nil {
		return err
	}
	rec := make([]string, len(rowColumns))
	for i := range rows {
		for j, c := range rowColumns {
			rec[j] = c.get(&rows[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ErrBadCSV is returned by ReadCSV for input that is not a run table.
var ErrBadCSV = errors.New("sim: not a run table")

// ReadCSV reads rows written by WriteCSV. Columns are matched by name,
// so a table with extra or reordered columns reads too; every known
// column must be present.
func ReadCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: reading header: %w", ErrBadCSV, err)
	}
	index := map[string]int{}
	for i, name := range header {
		index[name] = i
	}
	pos := make([]int, len(rowColumns))
	for j, c := range rowColumns {
		i, ok := index[c.name]
		if !ok {
			return nil, fmt.Errorf("%w: no %s column", ErrBadCSV, c.name)
		}
		pos[j] = i
	}
	var rows []Row
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return rows, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCSV, err)
		}
		var row Row
		for j, c := range rowColumns {
			if err := c.set(&row, rec[pos[j]]); err != nil {
				return nil, fmt.Errorf("%w: line %d, column %s: %w", ErrBadCSV, line, c.name, err)
			}
		}
		rows = append(rows, row)
	}
}

// summaryColumns are the CSV columns of a summary.
var summaryColumns = []struct {
	name string
	get  func(*Summary) string
}{
	{"members", func(s *Summary) string { return strconv.Itoa(s.Members) }},
	{"runs", func(s *Summary) string { return strconv.Itoa(s.Runs) }},
	{"not_converged", func(s *Summary) string { return strconv.Itoa(s.NotConverged) }},
	{"convergence_p50_ms", func(s *Summary) string { return formatFloat(s.ConvergenceP50MS) }},
	{"convergence_p99_ms", func(s *Summary) string { return formatFloat(s.ConvergenceP99MS) }},
	{"fork_rate_mean", func(s *Summary) string { return formatFloat(s.ForkRateMean) }},
	{"head_bytes_per_app_message", func(s *Summary) string { return formatFloat(s.HeadBytesPerAppMessage) }},
	{"max_rollback", func(s *Summary) string { return strconv.Itoa(s.MaxRollback) }},
	{"violating", func(s *Summary) string { return strconv.Itoa(s.Violating) }},
}

// WriteSummaryCSV writes a header and one line per group size.
func WriteSummaryCSV(w io.Writer, sums []Summary) error {
	cw := csv.NewWriter(w)
	rec := make([]string, len(summaryColumns))
	for j, c := range summaryColumns {
		rec[j] = c.name
	}
	if err := cw.Write(rec); err != nil {
		return err
	}
	for i := range sums {
		for j, c := range summaryColumns {
			rec[j] = c.get(&sums[i])
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
