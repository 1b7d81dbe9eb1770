// Package jobrun owns the job run controller: it starts each array index of
// a run as an instance, retries failed indices up to the retry limit (task
// mode) or without limit (daemon mode), ends runs whose maximum execution time
// passed, keeps each run's status and status details in the store, caps the
// instances running at once server-wide, and removes the instances of runs
// that were deleted. Every decision is made from the stored run and the
// engine's observed instances, so a restart resumes where it stopped.
package jobrun
