// core/read_epoch.h — when memory that lock-free readers may still be
// reading can be given away.
//
// Room: core/. A reader brackets its lock-free reads of shared memory with
// a ReadSection. Code that unpublishes memory (takes the last pointer to it
// out of every place a reader could find it) calls WaitForReaders() before
// it gives the memory back or reuses it: that returns once every section
// that had begun when it was called has ended. A section that begins later
// finds the memory unpublished.
//
// Cost: entering a section writes one word of the thread's own record (its
// own cache line, which no other core reads but a WaitForReaders in
// progress) and takes one full fence; leaving writes that word again.
// Nothing another reader reads is written, so readers on many cores never
// contend. WaitForReaders is for rare events (a table giving a page back):
// it reads every thread's record.
//
// Rules: a section is short and waits for nothing that a caller of
// WaitForReaders may hold (the tiny table's readers spin only on version
// counters, which writers release without waiting). WaitForReaders is
// never called inside a section. Sections nest.
//
// The scheme is epoch-based reclamation in its simplest form: one global
// epoch, bumped by each WaitForReaders; a record holds the epoch its
// section began in, or 0.
#ifndef TINYCACHED_CORE_READ_EPOCH_H_
#define TINYCACHED_CORE_READ_EPOCH_H_

namespace tinycached::core {

namespace read_epoch_internal {
struct Record;
}  // namespace read_epoch_internal

class ReadSection {
 public:
  ReadSection();
  ~ReadSection();
  ReadSection(const ReadSection&) = delete;
  ReadSection& operator=(const ReadSection&) = delete;

 private:
  read_epoch_internal::Record* const record_;
};

// Returns once every ReadSection begun before the call has ended.
// REQUIRES: the calling thread is in no ReadSection.
void WaitForReaders();

}  // namespace tinycached::core

#endif  // TINYCACHED_CORE_READ_EPOCH_H_
