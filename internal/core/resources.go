package core

import (
	"math"
	"strconv"
	"strings"
)

// validPairs lists the memory sizes (bytes) allowed with each vCPU amount
// (millicores), from the Code Engine reference §1.12.
var validPairs = map[int64][]int64{
	125: {250e6, 500e6, 1e9}, 250: {500e6, 1e9, 2e9}, 500: {1e9, 2e9, 4e9},
	1000: {2e9, 4e9, 8e9}, 2000: {4e9, 8e9, 16e9}, 4000: {8e9, 16e9, 32e9},
	6000: {12e9, 24e9, 48e9}, 8000: {16e9, 32e9}, 10000: {20e9, 40e9}, 12000: {24e9, 48e9},
}

// ParseCPU reads a vCPU amount ("1", "0.5", "500m") as millicores.
func ParseCPU(s string) (int64, error) {
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n <= 0 {
			return 0, Invalid("scale_cpu_limit", "%q is not a vCPU amount such as 0.5, 1 or 500m", clip(s))
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || f > 1e6 {
		return 0, Invalid("scale_cpu_limit", "%q is not a vCPU amount such as 0.5, 1 or 500m", clip(s))
	}
	return int64(math.Round(f * 1000)), nil
}

var byteSuffixes = []struct {
	suffix string
	mult   float64
}{
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12},
}

// ParseBytes reads a size ("4G", "0.5G", "512M", "1Gi", "1000") as bytes;
// M and G are decimal as in Code Engine, Mi and Gi binary.
func ParseBytes(field, s string) (int64, error) {
	if len(s) > 10 {
		return 0, Invalid(field, "%q is longer than 10 characters", clip(s))
	}
	num, mult := s, 1.0
	for _, b := range byteSuffixes {
		if n, ok := strings.CutSuffix(s, b.suffix); ok {
			num, mult = n, b.mult
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) {
		return 0, Invalid(field, "%q is not a size such as 512M, 4G or 1Gi", clip(s))
	}
	if f*mult > 1<<50 { // a pebibyte; also keeps the conversion from overflowing
		return 0, Invalid(field, "%q is larger than any limit coligo accepts", clip(s))
	}
	n := int64(math.Round(f * mult))
	if n < 1 {
		return 0, Invalid(field, "%q is less than one byte", clip(s))
	}
	return n, nil
}

// ValidateResources checks cpu, memory and ephemeral storage: a valid
// cpu/memory pair, and ephemeral storage at most max(400M, memory) and 48G.
func ValidateResources(cpu, memory, ephemeral string) error {
	c, err := ParseCPU(cpu)
	if err != nil {
		return err
	}
	m, err := ParseBytes("scale_memory_limit", memory)
	if err != nil {
		return err
	}
	e, err := ParseBytes("scale_ephemeral_storage_limit", ephemeral)
	if err != nil {
		return err
	}
	ok := false
	for _, allowed := range validPairs[c] {
		if approx(m, allowed) {
			ok = true
		}
	}
	if !ok {
		return Invalid("scale_memory_limit", "%s with %s vCPU is not a valid combination; see the table of vCPU and memory pairs (e.g. 1 vCPU with 2G, 4G or 8G)", memory, cpu)
	}
	if e > max(400e6, m) || e > 48e9 {
		return Invalid("scale_ephemeral_storage_limit", "%s is more than max(400M, memory) or 48G", ephemeral)
	}
	return nil
}

// approx accepts binary spellings of the decimal sizes (4Gi for 4G).
func approx(a, b int64) bool {
	d := math.Abs(float64(a-b)) / float64(b)
	return d < 0.08
}
