// Command selector-check answers, for atoll's differential selector test, what the real
// Kubernetes label-selector code says: one JSON request per input line, one JSON answer per
// output line. A request carries either `text` (parsed with labels.Parse, as kubectl's
// --selector and the API's labelSelector query are) or `selector` (a metav1.LabelSelector,
// converted with metav1.LabelSelectorAsSelector), and label sets to match it against.
package main

import (
	"bufio"
	"encoding/json"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

type request struct {
	Text     *string               `json:"text,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
	Labels   []map[string]string   `json:"labels"`
}

type answer struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
	Matches []bool `json:"matches,omitempty"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req request
		var a answer
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			a.Error = "bad request: " + err.Error()
			_ = enc.Encode(a)
			continue
		}
		var sel labels.Selector
		var err error
		if req.Text != nil {
			sel, err = labels.Parse(*req.Text)
		} else {
			sel, err = metav1.LabelSelectorAsSelector(req.Selector)
		}
		if err != nil {
			a.Error = err.Error()
		} else {
			a.OK = true
			for _, l := range req.Labels {
				a.Matches = append(a.Matches, sel.Matches(labels.Set(l)))
			}
		}
		_ = enc.Encode(a)
	}
}
