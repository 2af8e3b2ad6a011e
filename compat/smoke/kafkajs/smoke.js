// kafkajs side of the client smoke matrix: does one step and prints what it saw as one
// "RESULT <json>" line on stdout; compat/smoke/kafkajs_smoke.py checks it, so that the
// checks are the ones every other client gets.
//
//   node smoke.js STEP --bootstrap HOST:PORT --topic T --group G [--count N] [--deadline S] [--linger S]
'use strict'

const { Kafka, Partitioners, logLevel } = require('kafkajs')

const opts = { count: '0', deadline: '30', linger: '0' }
const argv = process.argv.slice(2)
const step = argv.shift()
while (argv.length) {
  const flag = argv.shift()
  if (!flag.startsWith('--') || !argv.length) throw new Error(`bad argument ${flag}`)
  opts[flag.slice(2)] = argv.shift()
}

// kafkajs logs to stdout by default; stdout carries the result only.
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${namespace} ${level}] ${message} ${JSON.stringify(extra)}\n`)
}

const kafka = new Kafka({
  clientId: 'smoke-kafkajs',
  brokers: [opts.bootstrap],
  logLevel: logLevel.INFO,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { initialRetryTime: 200, retries: 5 },
})

async function withAdmin (fn) {
  const admin = kafka.admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

async function create () {
  return withAdmin(async admin => {
    const created = await admin.createTopics({
      topics: [{ topic: opts.topic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    const md = await admin.fetchTopicMetadata({ topics: [opts.topic] })
    return { created, partitions: md.topics[0].partitions.length }
  })
}

async function produce () {
  // The default partitioner of kafkajs 2 (Java's murmur2); naming it silences the
  // warning that the default changed in 2.0.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const records = []
  try {
    // One send per record: the answer gives the partition and offset of each.
    for (const [key, value] of JSON.parse(opts.messages)) {
      const [md] = await producer.send({ topic: opts.topic, acks: -1, messages: [{ key, value }] })
      if (md.errorCode !== 0) throw new Error(`produce ${key}: error code ${md.errorCode}`)
      records.push([key, value, md.partition, Number(md.baseOffset)])
    }
  } finally {
    await producer.disconnect()
  }
  return { records }
}

// Group consume: the first `count` records in delivery order (with --linger, also what
// arrives in the next S seconds), then an explicit commit of what was read.
async function consume () {
  const want = Number(opts.count)
  // maxWaitTimeInMs: disconnect waits for the fetch in flight, which the broker holds
  // this long when there is nothing new (5 s by default).
  const consumer = kafka.consumer({ groupId: opts.group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  await consumer.connect()
  const records = []
  let reached
  const enough = new Promise(resolve => { reached = resolve })
  const linger = Number(opts.linger) > 0
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (records.length >= want && !linger) return
        records.push([partition, Number(message.offset), message.key.toString(), message.value.toString()])
        if (records.length >= want) reached()
      },
    })
    if (want > 0) {
      let timer
      const late = new Promise(resolve => { timer = setTimeout(resolve, Number(opts.deadline) * 1000) })
      await Promise.race([enough, late])
      clearTimeout(timer) // or node waits for it before exiting
    }
    if (linger) await new Promise(resolve => setTimeout(resolve, Number(opts.linger) * 1000))
    consumer.pause([{ topic: opts.topic }])
    const next = {}
    for (const [p, o] of records) next[p] = Math.max(next[p] || 0, o + 1)
    const offsets = Object.entries(next).map(([partition, offset]) =>
      ({ topic: opts.topic, partition: Number(partition), offset: String(offset) }))
    if (offsets.length) await consumer.commitOffsets(offsets)
  } finally {
    await consumer.disconnect()
  }
  const committed = await withAdmin(admin => admin.fetchOffsets({ groupId: opts.group, topics: [opts.topic] }))
  return { records, committed: Object.fromEntries(committed[0].partitions.map(p => [p.partition, Number(p.offset)])) }
}

async function describe () {
  return withAdmin(async admin => {
    const md = await admin.fetchTopicMetadata({ topics: [opts.topic] })
    const cluster = await admin.describeCluster()
    const { groups } = await admin.describeGroups([opts.group])
    const offsets = await admin.fetchOffsets({ groupId: opts.group, topics: [opts.topic] })
    return {
      partitions: md.topics[0].partitions.map(p => ({ id: p.partitionId, leader: p.leader, error: p.partitionErrorCode })),
      brokers: cluster.brokers.map(b => b.nodeId),
      groups: groups.map(g => ({ id: g.groupId, state: g.state, protocolType: g.protocolType, error: g.errorCode })),
      offsets: Object.fromEntries(offsets[0].partitions.map(p => [p.partition, Number(p.offset)])),
    }
  })
}

const steps = { create, produce, consume, describe }
if (!steps[step]) {
  console.error(`unknown step ${step}`)
  process.exit(2)
}
steps[step]().then(
  result => { process.stdout.write(`RESULT ${JSON.stringify(result)}\n`) },
  err => { console.error(err); process.stdout.write(`ERROR ${err.name}: ${err.message}\n`); process.exitCode = 1 },
)
