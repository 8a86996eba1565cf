/**
 * A push-based async-iterable with a `result()` promise: the shape OpenClaw consumes a provider's stream by
 * (duck typed, so nothing is imported from the host). Events pushed before anyone iterates are kept.
 */
export class EventStream<E, R> implements AsyncIterable<E> {
  private readonly queue: Array<E> = []
  private readonly waiting: Array<(result: IteratorResult<E>) => void> = []
  private ended = false
  private resolve!: (value: R) => void
  private readonly final: Promise<R> = new Promise<R>((resolve) => {
    this.resolve = resolve
  })

  /** Queues an event; ignored once the stream has ended. */
  push(event: E): void {
    if (this.ended) return
    const waiter = this.waiting.shift()
    if (waiter !== undefined) waiter({ value: event, done: false })
    else this.queue.push(event)
  }

  /** Ends the stream with its final value; later calls are ignored. */
  end(result: R): void {
    if (this.ended) return
    this.ended = true
    this.resolve(result)
    for (const waiter of this.waiting.splice(0)) waiter({ value: undefined, done: true })
  }

  get isEnded(): boolean {
    return this.ended
  }

  result(): Promise<R> {
    return this.final
  }

  [Symbol.asyncIterator](): AsyncIterator<E> {
    return {
      next: () => {
        const event = this.queue.shift()
        if (event !== undefined) return Promise.resolve({ value: event, done: false })
        if (this.ended) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => this.waiting.push(resolve))
      },
      return: () => Promise.resolve({ value: undefined, done: true })
    }
  }
}
