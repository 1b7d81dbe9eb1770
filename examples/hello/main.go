// Command hello is the sample workload of `make demo`: each instance of a job
// run prints which array index it is and greets the name it was given.
package main

import (
	"fmt"
	"os"
)

func main() {
	name := os.Getenv("GREETING_NAME")
	if name == "" {
		name = "world"
	}
	fmt.Printf("hello %s from index %s of %s (job run %s)\n", name, os.Getenv("JOB_INDEX"), os.Getenv("JOB_ARRAY_SIZE"), os.Getenv("CE_JOBRUN"))
}
