package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"
)

// print writes v as JSON or YAML, or calls table for the default output.
func (e *env) print(v any, table func(w io.Writer)) error {
	switch e.output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(e.out, string(b))
		return err
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return err
		}
		_, err = e.out.Write(b)
		return err
	case "table", "":
		tw := tabwriter.NewWriter(e.out, 0, 4, 3, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return fmt.Errorf("--output %q is not one of table, json, yaml", e.output)
}

// age renders the time since an RFC 3339 timestamp like kubectl does.
func age(ts string) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// printOne prints one resource as -o says: in a table, the headline alone
// when there is one (after a change), else what detail writes.
func (e *env) printOne(v any, headline string, detail func(w io.Writer)) error {
	return e.print(v, func(w io.Writer) {
		if headline != "" {
			fmt.Fprintln(w, headline)
			return
		}
		detail(w)
	})
}
