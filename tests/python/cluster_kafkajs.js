// kafkajs against a Gregor cluster through one bootstrap address (run by
// test_cluster_clients.py, with NODE_PATH at compat/smoke/kafkajs/node_modules):
// creates a topic, produces keyed records, reads them back in a consumer group and
// prints what it saw as one "RESULT <json>" line on stdout; the Python side checks it.
//
//   node cluster_kafkajs.js --bootstrap HOST:PORT --topic T --group G --count N [--deadline S]
'use strict'

const { Kafka, Partitioners, logLevel } = require('kafkajs')

const opts = { deadline: '30' }
const argv = process.argv.slice(2)
while (argv.length) {
  const flag = argv.shift()
  if (!flag.startsWith('--') || !argv.length) throw new Error(`bad argument ${flag}`)
  opts[flag.slice(2)] = argv.shift()
}
const count = Number(opts.count)

// kafkajs logs to stdout by default; stdout carries the result only.
const logCreator = () => ({ namespace, level, log }) => {
  const { message, ...extra } = log
  process.stderr.write(`[kafkajs ${namespace} ${level}] ${message} ${JSON.stringify(extra)}\n`)
}

// One bootstrap address only: every other broker is learnt from Metadata.
const kafka = new Kafka({
  clientId: 'cluster-kafkajs',
  brokers: [opts.bootstrap],
  logLevel: logLevel.INFO,
  logCreator,
  connectionTimeout: 5000,
  requestTimeout: 15000,
  retry: { initialRetryTime: 200, retries: 5 },
})

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  let created, metadata, cluster
  try {
    created = await admin.createTopics({
      topics: [{ topic: opts.topic, numPartitions: 3, replicationFactor: 1 }],
      waitForLeaders: true,
    })
    const md = await admin.fetchTopicMetadata({ topics: [opts.topic] })
    metadata = md.topics[0].partitions.map(p => ({ partition: p.partitionId, leader: p.leader, error: p.partitionErrorCode }))
    cluster = (await admin.describeCluster()).brokers.map(b => b.nodeId)
  } finally {
    await admin.disconnect()
  }

  // One send of all records: kafkajs splits it by partition leader, one Produce per broker.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  await producer.connect()
  const sent = []
  for (let i = 0; i < count; i++) sent.push({ key: `key-${i % 10}`, value: `value-${i}` })
  let acks
  try {
    acks = await producer.send({ topic: opts.topic, acks: -1, messages: sent })
  } finally {
    await producer.disconnect()
  }

  // maxWaitTimeInMs: disconnect waits for the fetch in flight, which the broker holds
  // this long when there is nothing new (5 s by default).
  const consumer = kafka.consumer({ groupId: opts.group, sessionTimeout: 10000, heartbeatInterval: 1000, maxWaitTimeInMs: 500 })
  await consumer.connect()
  const records = []
  let reached
  const enough = new Promise(resolve => { reached = resolve })
  try {
    await consumer.subscribe({ topic: opts.topic, fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        records.push([partition, Number(message.offset), message.key.toString(), message.value.toString()])
        if (records.length >= count) reached()
      },
    })
    let timer
    const late = new Promise(resolve => { timer = setTimeout(resolve, Number(opts.deadline) * 1000) })
    await Promise.race([enough, late])
    clearTimeout(timer) // or node waits for it before exiting
    consumer.pause([{ topic: opts.topic }])
    const next = {}
    for (const [p, o] of records) next[p] = Math.max(next[p] || 0, o + 1)
    const offsets = Object.entries(next).map(([partition, offset]) =>
      ({ topic: opts.topic, partition: Number(partition), offset: String(offset) }))
    if (offsets.length) await consumer.commitOffsets(offsets)
  } finally {
    await consumer.disconnect()
  }

  const admin2 = kafka.admin()
  await admin2.connect()
  let committed
  try {
    const fetched = await admin2.fetchOffsets({ groupId: opts.group, topics: [opts.topic] })
    committed = Object.fromEntries(fetched[0].partitions.map(p => [p.partition, Number(p.offset)]))
  } finally {
    await admin2.disconnect()
  }
  return {
    created,
    metadata,
    cluster,
    acks: acks.map(a => ({ partition: a.partition, error: a.errorCode, baseOffset: Number(a.baseOffset) })),
    records,
    committed,
  }
}

main().then(
  result => { process.stdout.write(`RESULT ${JSON.stringify(result)}\n`) },
  err => { console.error(err); process.stdout.write(`ERROR ${err.name}: ${err.message}\n`); process.exitCode = 1 },
)
