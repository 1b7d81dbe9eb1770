package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseArraySpec(t *testing.T) {
	tests := []struct {
		spec string
		want []int
		err  string
	}{
		{"0", []int{0}, ""},
		{"0-9", []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, ""},
		{"1,3,5-7", []int{1, 3, 5, 6, 7}, ""},
		{"7,1,3-4,3", []int{1, 3, 4, 7}, ""},
		{"9999999", []int{9999999}, ""},
		{"0-999", nil, ""},
		{"0-1000", nil, "more than 1000"},
		{"", nil, "empty"},
		{"10000000", nil, "7 digits"},
		{"5-3", nil, "ends before"},
		{"1,,2", nil, "not an index"},
		{"-1", nil, "not an index"},
		{"a", nil, "not an index"},
		{"1-2-3", nil, "not an index"},
		{" 1", nil, "not an index"},
	}
	for _, tt := range tests {
		got, err := ParseArraySpec(tt.spec)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
				t.Errorf("%q: got %v, want error with %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.spec, err)
			continue
		}
		if tt.want != nil {
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%q (-want +got):\n%s", tt.spec, diff)
			}
		}
	}
}

func TestFormatIndices(t *testing.T) {
	for in, want := range map[string]string{"0-2,4-9": "0-2,4-9", "3": "3", "1,3,5-7": "1,3,5-7", "1,2": "1-2"} {
		idx, err := ParseArraySpec(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := FormatIndices(idx); got != want {
			t.Errorf("FormatIndices(%v) = %q, want %q", idx, got, want)
		}
	}
}

func FuzzParseArraySpec(f *testing.F) {
	for _, s := range []string{"0", "0-9", "1,3,5-7", "9999999", "0-1000", "5-3", "1,,2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		idx, err := ParseArraySpec(spec)
		if err != nil {
			return
		}
		if len(idx) == 0 || len(idx) > MaxArrayIndices {
			t.Fatalf("%q gave %d indices", spec, len(idx))
		}
		for i, v := range idx {
			if v < 0 || v > MaxArrayIndex || (i > 0 && idx[i-1] >= v) {
				t.Fatalf("%q gave unsorted or out of range %v", spec, idx)
			}
		}
		// Formatting and parsing again gives the same indices.
		again, err := ParseArraySpec(FormatIndices(idx))
		if err != nil || !cmp.Equal(idx, again) {
			t.Fatalf("%q: round trip through %q failed: %v", spec, FormatIndices(idx), err)
		}
	})
}

func TestValidateResources(t *testing.T) {
	tests := []struct {
		cpu, mem, eph string
		field         string
	}{
		{"1", "4G", "400M", ""},
		{"0.125", "0.25G", "400M", ""},
		{"500m", "1G", "1G", ""},
		{"2", "8Gi", "400M", ""},
		{"12", "48G", "48G", ""},
		{"1", "1G", "400M", "scale_memory_limit"},
		{"3", "8G", "400M", "scale_memory_limit"},
		{"1", "4G", "5G", "scale_ephemeral_storage_limit"},
		{"x", "4G", "400M", "scale_cpu_limit"},
		{"-1", "4G", "400M", "scale_cpu_limit"},
		{"1", "4Q", "400M", "scale_memory_limit"},
		{"1", "4G", "400000000000M", "scale_ephemeral_storage_limit"},
	}
	for _, tt := range tests {
		err := ValidateResources(tt.cpu, tt.mem, tt.eph)
		var fe *FieldError
		if tt.field == "" && err != nil || tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
			t.Errorf("%s/%s/%s: got %v, want error on %q", tt.cpu, tt.mem, tt.eph, err, tt.field)
		}
	}
}

func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"4G", "0.5G", "512M", "1Gi", "1000", "", "G", "1e3M"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseBytes("x", s); err == nil && (n < 1 || n > 1<<50) {
			t.Fatalf("%q parsed to %d", s, n)
		}
	})
}

func TestSummarize(t *testing.T) {
	r := JobRun{Status: RunPending, Indices: map[int]*IndexState{0: {Status: IndexPending}, 1: {Status: IndexPending}}}
	r.Summarize(r.CreatedAt)
	if r.Status != RunPending {
		t.Errorf("all pending: %s", r.Status)
	}
	r.Indices[0].Status = IndexRunning
	r.Summarize(r.CreatedAt)
	if r.Status != RunRunning {
		t.Errorf("one running: %s", r.Status)
	}
	r.Indices[0].Status, r.Indices[1].Status = IndexSucceeded, IndexFailed
	r.Summarize(r.CreatedAt)
	if r.Status != RunFailed {
		t.Errorf("one failed: %s", r.Status)
	}
}
