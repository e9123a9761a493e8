package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleRows() []Row {
	return []Row{
		{Seed: 7, Members: 10, Commits: 12, Forks: 1, ForkRate: 1.0 / 12, Rollbacks: 3, MaxRollback: 2, Rejoins: 1,
			AppMessages: 40, Bytes: 123456, BytesPerMember: 12345.6, HeadBytes: 8000, HeadBytesPerAppMessage: 200, CommitBytes: 31000,
			SyncRequests: 9, SyncRequestBytes: 2000, SyncHave: 300, SyncLogs: 40, SyncHeldVotes: 48, SyncHeldLogs: 500,
			SyncAnswers: 8, SyncAnswerBytes: 9000, SyncEnvelopes: 8000, SyncHeads: 600, SyncRefusals: 74,
			SyncRefusalCount: 2, SyncGroupInfo: 0, SyncEmpty: 3, SyncNewEpochs: 6, SyncSketches: 5, SyncRelists: 1, SyncLeftOut: 4, SyncLeftOutAsks: 2,
			SyncRemovedRequests: 5, SyncRemovedRequestBytes: 1500, SyncJoinAsks: 3, SyncJoinEmpty: 2, SyncPrompts: 2, SyncPromptEmpty: 1,
			ConvergenceMS: 412.5, LatencyP50MS: 43.2, LatencyP99MS: 611, FinalEpoch: 13, FinalMembers: 11,
			Violations: 1, FirstViolation: "convergence: m1 at epoch 3, m2 at epoch 4"},
		{Seed: 8, Members: 10, Commits: 10, ConvergenceMS: -1, FinalEpoch: 10, FinalMembers: 10},
		{Seed: 7, Members: 5, Commits: 4, Forks: 2, ForkRate: 0.5, MaxRollback: 1, AppMessages: 10, HeadBytes: 500, ConvergenceMS: 100},
	}
}

func TestCSVRoundTripsRows(t *testing.T) {
	rows := sampleRows()
	var buf bytes.Buffer
	if err := WriteCSV(&buf, rows); err != nil {
		t.Fatal(err)
	}
	header, _, _ := strings.Cut(buf.String(), "\n")
	want := "seed,members,commits,forks,fork_rate,rollbacks,max_rollback,rejoins,app_messages,bytes,bytes_per_member," +
		"head_bytes,head_bytes_per_app_message,commit_bytes,sync_bytes,sync_missed,sync_overhead," +
		"sync_requests,sync_request_bytes,sync_have,sync_logs,sync_held_votes,sync_held_logs," +
		"sync_answers,sync_answer_bytes,sync_envelopes,sync_heads,sync_refusals,sync_refusal_count,sync_group_info,sync_empty,sync_new_epochs,sync_sketches,sync_relists,sync_left_out,sync_left_out_asks," +
		"sync_removed_requests,sync_removed_request_bytes,sync_join_asks,sync_join_empty,sync_prompts,sync_prompt_empty," +
		"convergence_ms,latency_p50_ms,latency_p99_ms,final_epoch,final_members,violations"
	if header != want {
		t.Errorf("header = %q, want %q", header, want)
	}
	if !strings.Contains(buf.String(), "\n7,10,12,1,0.08333333333333333,3,2,1,40,123456,12345.6,8000,200,31000,0,0,0,9,2000,300,40,48,500,8,9000,8000,600,74,2,0,3,6,5,1,4,2,5,1500,3,2,2,1,412.5,43.2,611,13,11,1\n") {
		t.Errorf("first row not as expected:\n%s", buf.String())
	}
	got, err := ReadCSV(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// The violation text is in JSON only.
	rows[0].FirstViolation = ""
	if len(got) != len(rows) {
		t.Fatalf("read %d rows, want %d", len(got), len(rows))
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], rows[i])
		}
	}
}

func TestReadCSVRejectsOtherTables(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"missing column", "seed,members\n1,2\n"},
		{"not a number", strings.Join(CSVHeader(), ",") + "\n" + strings.Repeat("x,", len(CSVHeader())-1) + "x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ReadCSV(strings.NewReader(tc.in)); !errors.Is(err, ErrBadCSV) {
				t.Errorf("err = %v, want ErrBadCSV", err)
			}
		})
	}
}

func TestSummarizeGroupsBySize(t *testing.T) {
	got := Summarize(sampleRows())
	want := []Summary{
		{Members: 5, Runs: 1, ConvergenceP50MS: 100, ConvergenceP99MS: 100, ForkRateMean: 0.5, HeadBytesPerAppMessage: 50, MaxRollback: 1},
		{Members: 10, Runs: 2, NotConverged: 1, ConvergenceP50MS: 412.5, ConvergenceP99MS: 412.5, ForkRateMean: 1.0 / 24,
			HeadBytesPerAppMessage: 200, MaxRollback: 2, Violating: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d summaries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("size %d: got %+v, want %+v", want[i].Members, got[i], want[i])
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	for _, tc := range []struct{ p, want float64 }{{50, 5}, {99, 10}, {10, 1}, {0, 1}, {100, 10}} {
		if got := percentile(v, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %v, want 0", got)
	}
}

func TestNewRowFromARun(t *testing.T) {
	cfg := DefaultConfig(3, 3)
	cfg.Duration, cfg.Quiet = 3*time.Second, 3*time.Second
	r := New(cfg).Run()
	row := NewRow(cfg, r)
	m := r.Metrics
	if row.Seed != 3 || row.Members != 3 || row.Commits != m.Commits || row.Bytes != m.Bytes || row.Violations != len(r.Violations) {
		t.Errorf("row %+v does not match metrics %+v", row, m)
	}
	if want := float64(m.Bytes) / 3; row.BytesPerMember != want {
		t.Errorf("bytes per member = %v, want %v", row.BytesPerMember, want)
	}
	if m.ConvergenceTime >= 0 && row.ConvergenceMS != float64(m.ConvergenceTime)/1e6 {
		t.Errorf("convergence = %v ms, want %v", row.ConvergenceMS, m.ConvergenceTime)
	}
}

func TestReportJSONCarriesTheViolationText(t *testing.T) {
	rep := Report{Command: "parley sim --seed 7", Runs: sampleRows()}
	rep.Summary = Summarize(rep.Runs)
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Command != rep.Command || len(got.Runs) != 3 || len(got.Summary) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	if got.Runs[0] != rep.Runs[0] {
		t.Errorf("run 0: got %+v, want %+v", got.Runs[0], rep.Runs[0])
	}
	if !strings.Contains(buf.String(), `"first_violation": "convergence: m1`) {
		t.Errorf("JSON lacks the violation text:\n%s", buf.String())
	}
}
